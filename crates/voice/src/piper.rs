//! Piper voices: VITS models in ONNX (run through `ort` on the shared ONNX
//! Runtime), fed with phonemes from espeak-ng (`--ipa`, the phonemizer Piper's
//! voices were trained with). Speed is the model's length scale (1 / speed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use babelcast_process::Program;
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use crate::{SAMPLE_RATE, Voice, VoiceError};

/// A Piper voice's `.onnx.json`.
#[derive(Debug, Deserialize)]
struct PiperConfig {
    audio: AudioConfig,
    espeak: EspeakConfig,
    inference: Inference,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Debug, Deserialize)]
struct Inference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// A loaded Piper voice.
#[derive(Debug)]
pub struct Piper {
    name: String,
    espeak: Program,
    config: PiperConfig,
    session: Mutex<Session>,
}

impl Piper {
    /// Loads `model` (`x.onnx`, with `x.onnx.json` beside it) on the ONNX Runtime
    /// `library`. A missing or unreadable file, or a model that does not load,
    /// fails with its path.
    pub fn load(model: &Path, library: &Path, espeak: Program) -> Result<Piper, VoiceError> {
        let fail = |what: &str, e: String| {
            VoiceError::Engine(format!("Piper voice {}: {what}: {e}", model.display()))
        };
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| fail("cannot read its .onnx.json", e.to_string()))?;
        let config: PiperConfig =
            serde_json::from_str(&text).map_err(|e| fail("bad .onnx.json", e.to_string()))?;
        if config.audio.sample_rate != SAMPLE_RATE {
            return Err(fail(
                "sample rate",
                format!("{} Hz, babelcast mixes at {SAMPLE_RATE}", config.audio.sample_rate),
            ));
        }
        let env = babelcast_onnx::environment(library).map_err(|e| fail("ONNX Runtime", e))?;
        let build = || -> ort::Result<Session> {
            Session::builder(&env)?.with_intra_threads(2)?.commit_from_file(model)
        };
        let session = build().map_err(|e| fail("cannot load", e.to_string()))?;
        let name = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Piper { name, espeak, config, session: Mutex::new(session) })
    }

    /// Phoneme ids for one clause: `^`, each phoneme followed by the pad `_`, `$`.
    fn ids(&self, phonemes: &str) -> Vec<i64> {
        let map = &self.config.phoneme_id_map;
        let id = |s: &str| map.get(s).and_then(|v| v.first()).copied();
        let pad = id("_").unwrap_or(0);
        let mut ids = vec![id("^").unwrap_or(1), pad];
        for c in phonemes.chars() {
            if let Some(i) = id(&c.to_string()) {
                ids.push(i);
                ids.push(pad);
            }
        }
        ids.push(id("$").unwrap_or(2));
        ids
    }
}

impl Voice for Piper {
    fn name(&self) -> String {
        format!("piper:{}", self.name)
    }

    fn speak(&self, text: &str, speed: f64) -> Result<Vec<f32>, VoiceError> {
        let call = self
            .espeak
            .call()
            .args(["-q", "--ipa", "-v", &self.config.espeak.voice, "--stdin"])
            .stdin(text.as_bytes().to_vec());
        let phonemes = crate::run_to_end(call)?;
        let scales = [
            self.config.inference.noise_scale,
            // Faster speech is a shorter length scale.
            (f64::from(self.config.inference.length_scale) / speed.max(0.1)) as f32,
            self.config.inference.noise_w,
        ];
        let mut audio = Vec::new();
        let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for clause in phonemes.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let ids = self.ids(clause);
            let n = ids.len();
            let mut run = || -> ort::Result<Vec<f32>> {
                let input = Tensor::from_array(([1usize, n], ids.clone()))?;
                let lengths = Tensor::from_array(([1usize], vec![n as i64]))?;
                let scales = Tensor::from_array(([3usize], scales.to_vec()))?;
                let outputs = session.run(ort::inputs![input, lengths, scales])?;
                let (_, samples) = outputs[0].try_extract_tensor::<f32>()?;
                Ok(samples.to_vec())
            };
            let samples = run().map_err(|e| VoiceError::Engine(format!("Piper {}: {e}", self.name)))?;
            audio.extend(samples.iter().map(|s| s.clamp(-1.0, 1.0)));
            // A short pause between clauses.
            audio.extend(std::iter::repeat_n(0.0, SAMPLE_RATE as usize / 5));
        }
        Ok(audio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> PathBuf {
        babelcast_models::default_dir()
    }

    fn library() -> PathBuf {
        models().join("onnxruntime/libonnxruntime.so.1.31.1")
    }

    #[test]
    fn a_piper_voice_speaks_and_speeds_up_by_its_length_scale() {
        let model = models().join("piper-en_US-joe-medium/en_US-joe-medium.onnx");
        let voice = Piper::load(&model, &library(), Program::espeak_ng())
            .expect("the Piper voice loads (babelcast models fetch)");
        assert_eq!(voice.name(), "piper:en_US-joe-medium");
        let text = "Good morning, and welcome to the programme.";
        let normal = voice.speak(text, 1.0).expect("speaks");
        let loud = normal.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / normal.len() as f64;
        assert!(loud.sqrt() > 0.02, "audible speech");
        assert!(normal.len() > SAMPLE_RATE as usize, "over a second of speech");
        // Piper draws its phoneme durations with noise, so one pair of clips can
        // differ by more than the speed-up: compare the lengths of three of each.
        let total = |speed: f64| -> usize {
            (0..3).map(|_| voice.speak(text, speed).expect("speaks").len()).sum::<usize>()
        };
        let ratio = total(1.0) as f64 / total(1.35) as f64;
        assert!(ratio > 1.15 && ratio < 1.5, "{ratio}");
    }

    #[test]
    fn a_voice_that_cannot_load_says_which_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let model = dir.path().join("broken.onnx");
        std::fs::write(&model, "not a model").expect("write");
        std::fs::write(
            dir.path().join("broken.onnx.json"),
            std::fs::read(models().join("piper-en_US-joe-medium/en_US-joe-medium.onnx.json")).expect("json"),
        )
        .expect("write");
        let err = Piper::load(&model, &library(), Program::espeak_ng()).expect_err("broken");
        assert!(err.to_string().contains("broken.onnx") && err.to_string().contains("cannot load"), "{err}");
        let err = Piper::load(&dir.path().join("missing.onnx"), &library(), Program::espeak_ng())
            .expect_err("missing");
        assert!(err.to_string().contains("missing.onnx"), "{err}");
    }
}
