//! Loads the real Whisper models fetched by `babelcast models fetch`.

use babelcast_models::ModelsDir;
use babelcast_speech::{ComputeType, WhisperModel};

fn models() -> ModelsDir {
    ModelsDir::new(babelcast_models::default_dir())
}

#[test]
fn english_only_and_multilingual_models_load_and_say_which_they_are() {
    let tiny = WhisperModel::load(&models(), "whisper-tiny.en", ComputeType::Int8, 1).expect("tiny.en loads");
    assert!(!tiny.is_multilingual());
    assert_eq!(tiny.n_mels(), 80);
    let base = WhisperModel::load(&models(), "whisper-base", ComputeType::Int8, 1).expect("base loads");
    assert!(base.is_multilingual());
}

#[test]
fn a_folder_that_is_not_a_model_fails_with_its_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("model.bin"), b"not a model").expect("write");
    let err = WhisperModel::load_path(tmp.path(), ComputeType::Int8, 1).expect_err("garbage");
    assert!(err.to_string().contains(&tmp.path().display().to_string()), "{err}");
}

#[test]
fn the_language_list_is_the_multilingual_vocabulary_s_language_tokens_in_order() {
    let dir = models().require("whisper-base").expect("whisper-base");
    let vocab = babelcast_speech::Vocabulary::load(&dir).expect("vocabulary");
    let languages = babelcast_speech::vocab::LANGUAGES;
    // Cantonese (`yue`) came with large-v3; base has the 99 before it.
    let (known, later) = languages.split_at(languages.len() - 1);
    assert_eq!(later, ["yue"]);
    let first = vocab.sot + 1;
    for (n, code) in known.iter().enumerate() {
        assert_eq!(vocab.id(&format!("<|{code}|>")), Some(first + n as u32), "{code}");
    }
    assert_eq!(vocab.token(first + known.len() as u32), "<|translate|>", "no language left out");
}
