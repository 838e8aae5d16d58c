//! The flight recorder: one JSONL file per session holding every transcript, reply, tool call, state change and
//! memory operation, each timestamped and, where it took time, with its duration.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tracing::warn;

/// Writes one session's events. A failed write is logged and the call goes on: recording never breaks a call.
pub struct FlightRecorder {
    path: PathBuf,
    out: Mutex<Option<BufWriter<File>>>,
    seq: AtomicU64,
    session: String,
}

impl FlightRecorder {
    /// Starts `<dir>/<session>.jsonl` (the session id folded to a safe file name), appending if it exists.
    pub fn create(dir: &Path, session: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let safe: String = session
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .take(128)
            .collect();
        let path = dir.join(format!("{safe}.jsonl"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            out: Mutex::new(Some(BufWriter::new(file))),
            seq: AtomicU64::new(0),
            session: session.to_string(),
        })
    }

    /// Where the events go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event: `kind` (transcript, reply, tool, state, memory, …), how long it took, and its data.
    pub fn record(&self, kind: &str, duration: Option<Duration>, data: Value) {
        let event = json!({
            "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "session": self.session,
            "seq": self.seq.fetch_add(1, Ordering::Relaxed),
            "kind": kind,
            "duration_ms": duration.map(|d| d.as_secs_f64() * 1000.0),
            "data": data,
        });
        let mut guard = self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(out) = guard.as_mut() {
            // Flushed per event so a crash loses at most the event being written.
            if let Err(e) = writeln!(out, "{event}").and_then(|_| out.flush()) {
                warn!(path = %self.path.display(), error = %e, "flight recorder stopped writing");
                *guard = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let rec = FlightRecorder::create(dir.path(), "CA/../123").unwrap();
        assert!(rec.path().starts_with(dir.path()), "session ids cannot escape the folder");
        rec.record("transcript", None, json!({"text": "hi"}));
        rec.record("reply", Some(Duration::from_millis(12)), json!({"text": "hello"}));
        let lines: Vec<Value> =
            std::fs::read_to_string(rec.path()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "transcript");
        assert_eq!(lines[1]["seq"], 1);
        assert_eq!(lines[1]["duration_ms"], 12.0);
    }
}
