//! The process's ONNX Runtime environment. ONNX Runtime is loaded from a file at
//! run time (the library `babelcast models fetch` puts in `models/onnxruntime`) and
//! `ort` allows one environment per process, so every model that runs on it (the
//! Silero VAD, the Piper voices) gets it from here.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;

static RUNTIME: Mutex<Option<Environment>> = Mutex::new(None);

/// Loads ONNX Runtime from `library` unless it already is, and returns the
/// environment. The first library loaded stays for the life of the process; later
/// paths are ignored. A failure is not remembered: after `babelcast models fetch` a
/// later call retries.
pub fn environment(library: &Path) -> Result<Environment, String> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let env = ort::init_from(library)
        .map_err(|e| e.to_string())?
        .with_name("babelcast")
        .build()
        .map_err(|e| e.to_string())?;
    *slot = Some(env.clone());
    Ok(env)
}
