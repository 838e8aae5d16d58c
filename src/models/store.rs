//! The models folder: where each pinned file lives and whether the bytes there are the pinned ones.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{FileSpec, Manifest, ModelError, ModelSpec};

/// A models folder together with the manifest that says what belongs in it.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    manifest: Manifest,
}

/// A model whose files are all present and verified.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The model's manifest entry.
    pub spec: ModelSpec,
    /// Folder holding its files.
    pub dir: PathBuf,
}

/// What `models list` reports for one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileStatus {
    /// Model name.
    pub model: String,
    /// File name.
    pub file: String,
    /// Where it is (or would be) on disk.
    pub path: PathBuf,
    /// Its state.
    pub state: FileState,
}

/// State of one model file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Present, right size, sha256 matches.
    Verified,
    /// Not on disk.
    Missing,
    /// On disk but the bytes are not the pinned ones.
    Corrupt,
}

impl ModelDir {
    /// Path of one of the model's files.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Path of the model's GGUF file, for chat models.
    pub fn gguf(&self) -> Option<PathBuf> {
        self.spec.files.iter().find(|f| f.path.ends_with(".gguf")).map(|f| self.path(&f.path))
    }
}

impl ModelStore {
    /// A store rooted at `root` with the built-in manifest.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, ModelError> {
        Ok(Self { root: root.into(), manifest: Manifest::builtin()? })
    }

    /// The folder holding every model.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Folder of one model.
    pub fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The model, if every file is present and verified; otherwise an error naming the command that fixes it.
    ///
    /// A file is verified once by hashing it, after which a `.sha256` stamp beside it records the result; later
    /// loads check size and stamp only, so start-up does not hash half a gigabyte. `models list --verify` re-hashes.
    pub fn resolve(&self, name: &str) -> Result<ModelDir, ModelError> {
        let spec = self.manifest.model(name)?.clone();
        let dir = self.model_dir(name);
        for file in &spec.files {
            let path = dir.join(&file.path);
            match self.check(file, &path, false)? {
                FileState::Verified => {}
                FileState::Missing => return Err(ModelError::Missing { model: spec.name.clone(), path }),
                FileState::Corrupt => {
                    return Err(ModelError::Corrupt {
                        model: spec.name.clone(),
                        path,
                        detail: format!("expected {} bytes with sha256 {}", file.size, file.sha256),
                    })
                }
            }
        }
        Ok(ModelDir { spec, dir })
    }

    /// The state of every file of every model; `deep` re-hashes files instead of trusting their stamps.
    pub fn status(&self, deep: bool) -> Result<Vec<FileStatus>, ModelError> {
        let mut out = Vec::new();
        for model in &self.manifest.models {
            for file in &model.files {
                let path = self.model_dir(&model.name).join(&file.path);
                let state = self.check(file, &path, deep)?;
                out.push(FileStatus { model: model.name.clone(), file: file.path.clone(), path, state });
            }
        }
        Ok(out)
    }

    /// Checks one file against its pin.
    pub(crate) fn check(&self, spec: &FileSpec, path: &Path, deep: bool) -> Result<FileState, ModelError> {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
            Err(e) => return Err(ModelError::io(path, e)),
        };
        if meta.len() != spec.size {
            return Ok(FileState::Corrupt);
        }
        let stamp = stamp_path(path);
        if !deep && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == spec.sha256) {
            return Ok(FileState::Verified);
        }
        if sha256_file(path)? == spec.sha256 {
            write_stamp(path, &spec.sha256)?;
            Ok(FileState::Verified)
        } else {
            let _ = std::fs::remove_file(stamp);
            Ok(FileState::Corrupt)
        }
    }
}

/// The stamp recording that `path` was hashed and matched.
fn stamp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// Records that `path` hashed to `sha256`.
pub(crate) fn write_stamp(path: &Path, sha256: &str) -> Result<(), ModelError> {
    let stamp = stamp_path(path);
    let mut f = File::create(&stamp).map_err(|e| ModelError::io(&stamp, e))?;
    writeln!(f, "{sha256}").map_err(|e| ModelError::io(&stamp, e))
}

/// Lower-case hex sha256 of a file, streamed.
pub(crate) fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_corrupt_files_are_reported_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path()).unwrap();
        let err = store.resolve("minilm").unwrap_err();
        assert!(matches!(err, ModelError::Missing { .. }));
        assert!(err.to_string().contains("tourdesk models fetch minilm"), "{err}");

        let spec = store.manifest().model("minilm").unwrap().files[1].clone();
        let path = store.model_dir("minilm").join(&spec.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![b'x'; spec.size as usize]).unwrap();
        assert_eq!(store.check(&spec, &path, false).unwrap(), FileState::Corrupt);
        // A stale stamp does not rescue a file whose bytes changed.
        write_stamp(&path, &spec.sha256).unwrap();
        assert_eq!(store.check(&spec, &path, true).unwrap(), FileState::Corrupt);
    }
}
