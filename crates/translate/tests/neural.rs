//! The CTranslate2 engine on a real (tiny) CTranslate2 model that this test builds
//! with the CTranslate2 Python package: `tests/fixtures/tiny_ct2_model.py` writes
//! a word-for-word English→Spanish Transformer in OPUS-MT's layout.

use std::path::{Path, PathBuf};
use std::process::Command;

use babelcast_core::{CaptionProfile, Cue, Lang, Millis, Severity, captions};
use babelcast_process::Program;
use babelcast_translate::neural::{Family, Model};
use babelcast_translate::{Apertium, Engines, Glossary, Neural, Translator, apertium, translate_cues};

fn lang(tag: &str) -> Lang {
    tag.parse().expect("lang")
}

fn cue(start: u64, end: u64, text: &str) -> Cue {
    Cue { start: Millis(start), end: Millis(end), text: text.into() }
}

/// Builds the tiny model into `root/opus-mt-en-es` and returns that folder.
fn tiny_model(root: &Path) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let python = Path::new(&home).join(".cache/babelcast/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/test-fixtures.sh", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_ct2_model.py");
    let dir = root.join("opus-mt-en-es");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let out = Command::new(python).arg(script).arg(&dir).output().expect("run python");
    assert!(
        out.status.success(),
        "building the tiny model failed (scripts/test-fixtures.sh installs ctranslate2 and sentencepiece): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn a_ctranslate2_model_translates_sentences_across_cues_and_keeps_their_times() {
    let root = tempfile::tempdir().expect("tempdir");
    tiny_model(root.path());
    let (neural, problems) = Neural::discover(root.path(), 1);
    assert!(problems.is_empty(), "{problems:?}");
    let model = neural.models().next().expect("one model");
    assert_eq!(model.family(), &Family::Pair { from: lang("en"), to: lang("es") });
    assert_eq!(neural.engine(lang("en"), lang("es")).as_deref(), Some("ctranslate2 opus-mt-en-es"));
    assert_eq!(neural.engine(lang("es"), lang("en")), None, "a pair model goes one way");
    assert_eq!(Translator::targets(&neural, lang("en")), vec![lang("es")]);

    // One sentence over two cues, then one in a cue of its own.
    let cues =
        [cue(0, 2000, "the cat sleeps"), cue(2100, 4000, "in the garden."), cue(4100, 6000, "the dog runs.")];
    let t = translate_cues(
        &neural,
        lang("en"),
        lang("es"),
        &cues,
        &Glossary::default(),
        &CaptionProfile::default(),
    )
    .expect("translate");
    let texts: Vec<&str> = t.cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["el gato duerme", "en el jardín.", "el perro corre."]);
    let times: Vec<(u64, u64)> = t.cues.iter().map(|c| (c.start.0, c.end.0)).collect();
    assert_eq!(times, [(0, 2000), (2100, 4000), (4100, 6000)]);
    assert!(
        captions::check(&t.cues, &CaptionProfile::default()).iter().all(|v| v.severity != Severity::Error)
    );

    // The glossary works through the model too: a kept term comes back as written,
    // a forced one as given.
    let glossary =
        Glossary { keep: vec!["cat".into()], force: [("dog".to_owned(), "can".to_owned())].into() };
    let cues = [cue(0, 3000, "the cat sleeps and the dog runs.")];
    let t = translate_cues(&neural, lang("en"), lang("es"), &cues, &glossary, &CaptionProfile::default())
        .expect("translate with glossary");
    assert_eq!(t.cues[0].text.replace('\n', " "), "el cat duerme y el can corre.");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);

    // A term the model cannot carry through (its placeholder is not in the tiny
    // vocabulary: the third one) is reported, not silently dropped.
    let glossary =
        Glossary { keep: vec!["cat".into(), "dog".into(), "garden.".into()], force: Default::default() };
    let cues = [cue(0, 3000, "the cat and the dog sleeps in the garden.")];
    let t = translate_cues(&neural, lang("en"), lang("es"), &cues, &glossary, &CaptionProfile::default())
        .expect("translate with glossary");
    assert!(t.warnings.iter().any(|w| w.contains("lost in translation")), "{:?}", t.warnings);
}

#[test]
fn the_users_models_come_before_apertium_and_apertium_covers_the_rest() {
    let root = tempfile::tempdir().expect("tempdir");
    tiny_model(root.path());
    let (neural, _) = Neural::discover(root.path(), 1);
    let apertium = Apertium::discover(Program::apertium(), Path::new(apertium::DEFAULT_MODES_DIR));
    let engines = Engines(vec![Box::new(neural), Box::new(apertium)]);
    assert_eq!(engines.engine(lang("en"), lang("es")).as_deref(), Some("ctranslate2 opus-mt-en-es"));
    assert_eq!(engines.engine(lang("en"), lang("it")).as_deref(), Some("apertium eng-spa → spa-ita"));
    let out = engines
        .translate(lang("en"), lang("es"), &["the dog sleeps in the house.".to_owned()])
        .expect("translate");
    assert_eq!(out, ["el perro duerme en el casa."]);
    let err = engines.translate(lang("en"), lang("ja"), &["hi".to_owned()]).expect_err("no en→ja");
    assert!(err.to_string().contains("cannot translate en to ja"), "{err}");
}

#[test]
fn a_model_folder_missing_a_file_or_with_broken_weights_is_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let good = tiny_model(root.path());

    // Missing the target tokenizer: reported at discovery, the folder skipped.
    let missing = root.path().join("opus-mt-en-it");
    std::fs::create_dir_all(&missing).expect("mkdir");
    for file in ["model.bin", "shared_vocabulary.json", "source.spm"] {
        std::fs::copy(good.join(file), missing.join(file)).expect("copy");
    }
    // A folder whose languages cannot be told.
    let unnamed = root.path().join("my-model");
    std::fs::create_dir_all(&unnamed).expect("mkdir");
    for file in ["model.bin", "shared_vocabulary.json", "source.spm", "target.spm"] {
        std::fs::copy(good.join(file), unnamed.join(file)).expect("copy");
    }
    let (neural, problems) = Neural::discover(root.path(), 1);
    assert_eq!(neural.models().count(), 1);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("my-model") && p.contains("opus-mt-en-es")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("opus-mt-en-it") && p.contains("target.spm")), "{problems:?}");

    // Weights cut short: the error names the model when it is first used.
    std::fs::write(good.join("model.bin"), b"not a model").expect("write");
    let (neural, _) = Neural::discover(root.path(), 1);
    let err = neural.translate(lang("en"), lang("es"), &["the cat".to_owned()]).expect_err("broken weights");
    let message = err.to_string();
    assert!(message.contains("opus-mt-en-es") && message.contains("cannot load"), "{message}");
}

#[test]
fn multilingual_models_are_told_by_their_language_tokens() {
    let root = tempfile::tempdir().expect("tempdir");
    let good = tiny_model(root.path());
    for (name, tokens) in
        [("m2m100_418m", ["__en__", "__es__", "__it__"]), ("nllb-200", ["eng_Latn", "spa_Latn", "ita_Latn"])]
    {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::copy(good.join("model.bin"), dir.join("model.bin")).expect("copy");
        std::fs::copy(good.join("source.spm"), dir.join("sentencepiece.bpe.model")).expect("copy");
        let mut vocabulary = vec!["<unk>", "<s>", "</s>"];
        vocabulary.extend(tokens);
        std::fs::write(dir.join("shared_vocabulary.json"), serde_json::to_vec(&vocabulary).expect("json"))
            .expect("write");
        let model = Model::open(&dir, 1).expect("open");
        assert_eq!(model.family(), if name.starts_with("m2m") { &Family::M2m100 } else { &Family::Nllb });
        assert!(model.covers(lang("en"), lang("it")) && model.covers(lang("it"), lang("es")));
        assert!(!model.covers(lang("en"), lang("de")) && !model.covers(lang("en"), lang("en")));
    }
}
