//! Running the espeak-ng program (installed by the project's setup): the text goes through stdin, never the
//! command line, so nothing in it can be read as an option.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::inference::InferenceError;

/// Runs `program` with `args` (and `out` as its `-w` file when given), `text` on stdin with control characters
/// blanked; returns its standard output, or an error that says what failed.
pub(crate) async fn run(
    program: &str,
    args: &[&str],
    out: Option<&Path>,
    text: &str,
) -> Result<Vec<u8>, InferenceError> {
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    if let Some(out) = out {
        command.arg("-w").arg(out);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| InferenceError::Invalid(format!("cannot run {program}: {e}; install it with `just setup`")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| InferenceError::Invalid(format!("{program} stopped reading: {e}")))?;
    }
    let done = child.wait_with_output().await.map_err(|e| InferenceError::Invalid(format!("{program} failed: {e}")))?;
    if !done.status.success() {
        return Err(InferenceError::Invalid(format!(
            "{program} failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        )));
    }
    Ok(done.stdout)
}
