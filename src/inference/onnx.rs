//! ONNX models through ONNX Runtime, loaded at run time from the shared library the `onnxruntime` model entry
//! fetches (PyPI's `onnxruntime` wheel ships it): one runtime per process, one session per model.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;

use super::InferenceError;

/// The process's ONNX Runtime and the library it was loaded from (ONNX Runtime allows one per process).
static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The ONNX Runtime loaded from `library` (an absolute path to `libonnxruntime.so`), loading it on first use.
pub fn runtime(library: &Path) -> Result<Environment, InferenceError> {
    let mut slot = RUNTIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, env)) = slot.as_ref() {
        if loaded != library {
            return Err(InferenceError::Invalid(format!(
                "ONNX Runtime is already loaded from {}; one process cannot also load {}",
                loaded.display(),
                library.display()
            )));
        }
        return Ok(env.clone());
    }
    if !library.is_file() {
        return Err(InferenceError::Invalid(format!(
            "the ONNX Runtime library {} is missing: run `tourdesk models fetch onnxruntime`",
            library.display()
        )));
    }
    let library = library
        .canonicalize()
        .map_err(|e| InferenceError::Invalid(format!("ONNX Runtime library {}: {e}", library.display())))?;
    let env = ort::init_from(&library)
        .map_err(|e| InferenceError::Invalid(format!("cannot load ONNX Runtime from {}: {e}", library.display())))?
        .with_name("tourdesk")
        .with_telemetry(false)
        .build()
        .map_err(|e| InferenceError::Invalid(format!("cannot start ONNX Runtime: {e}")))?;
    *slot = Some((library, env.clone()));
    Ok(env)
}

/// Opens the model at `path` to run on `threads` threads of the calling thread's choosing (no spinning between
/// runs: the cores are shared with everything else).
pub fn session(env: &Environment, path: &Path, threads: usize) -> Result<Session, InferenceError> {
    open(env, path, threads)
        .map_err(|e| InferenceError::Invalid(format!("cannot load the ONNX model {}: {e}", path.display())))
}

fn open(env: &Environment, path: &Path, threads: usize) -> ort::Result<Session> {
    Session::builder(env)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .commit_from_file(path)
}

/// One ONNX model file of the manifest and the runtime library that runs it, checked before a model thread starts.
#[derive(Debug, Clone)]
pub struct ModelFile {
    path: PathBuf,
    library: PathBuf,
}

impl ModelFile {
    /// The file at `path` of manifest model `model`, run by `library`; a missing file is an error that names the
    /// command fetching it.
    pub fn new(model: &str, path: PathBuf, library: &Path) -> Result<Self, InferenceError> {
        if !path.is_file() {
            return Err(InferenceError::Invalid(format!(
                "the {model} model file {} is missing: run `tourdesk models fetch {model} onnxruntime`",
                path.display()
            )));
        }
        Ok(Self { path, library: library.to_path_buf() })
    }

    /// Loads the runtime (once per process) and opens a session on `threads` threads.
    pub fn open(&self, threads: usize) -> Result<Session, InferenceError> {
        session(&runtime(&self.library)?, &self.path, threads)
    }
}
