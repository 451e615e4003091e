//! Real transcription of real speech: Debian's LibriVox clips (pocketsphinx-testdata)
//! with their reference transcripts, through the real Whisper models.

use babelcast_core::captions::{self, Severity};
use babelcast_core::{CaptionProfile, ErrorCode, Millis, Word};
use babelcast_models::ModelsDir;
use babelcast_speech::{
    ComputeType, InMemory, SpeechGate, TranscribeOptions, Transcription, Vad, VadOptions, WhisperModel,
};

const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

fn models() -> ModelsDir {
    ModelsDir::new(babelcast_models::default_dir())
}

/// The 16 kHz mono 16-bit samples of a WAV file, as f32.
fn read_wav(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (install pocketsphinx-testdata)"));
    assert_eq!(&bytes[..4], b"RIFF");
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().expect("4 bytes")) as usize;
        if id == b"data" {
            let data = &bytes[i + 8..(i + 8 + len).min(bytes.len())];
            return data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0).collect();
        }
        i += 8 + len + (len & 1);
    }
    panic!("{path}: no data chunk");
}

/// (clip id, reference words) from the corpus's transcription file.
fn references() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{LIBRIVOX}/transcription")).expect("transcription file");
    text.lines()
        .filter_map(|line| {
            let (words, id) = line.rsplit_once(" (")?;
            let words = words.replace("<s>", "").replace("</s>", "");
            Some((id.trim_end_matches(')').to_owned(), words.trim().to_owned()))
        })
        .collect()
}

/// Lower case, no punctuation, "Mr." spelled out as the reference does.
fn normalise(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>())
        .filter(|w| !w.is_empty())
        .map(|w| if w == "mr" { "mister".to_owned() } else { w })
        .collect()
}

/// Word errors (substitutions + insertions + deletions) by edit distance.
fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for r in reference {
        let mut prev_diag = row[0];
        row[0] += 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let cost = usize::from(r != h);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev_diag + cost);
            prev_diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[hypothesis.len()]
}

fn transcribe(model: &WhisperModel, samples: &[f32], options: &TranscribeOptions) -> Transcription {
    let mut done = Vec::new();
    let t =
        model.transcribe(&mut InMemory::new(samples), options, &mut |s| done.push(s)).expect("transcribes");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "progress only moves forward: {done:?}");
    t
}

fn assert_words_are_sane(words: &[Word], duration_s: f64) {
    for w in words {
        assert!(w.start <= w.end, "{w:?}");
        assert!(w.end.as_secs_f64() <= duration_s + 0.5, "{w:?} past the end {duration_s}");
    }
    for pair in words.windows(2) {
        assert!(pair[0].start <= pair[1].start, "words out of order: {pair:?}");
    }
}

fn load(name: &str) -> WhisperModel {
    WhisperModel::load(&models(), name, ComputeType::Int8, 2)
        .expect("model loads (run babelcast models fetch)")
}

#[test]
fn base_model_transcribes_librivox_within_10_percent_wer_and_detects_english() {
    let model = load("whisper-base");
    let (mut errors, mut total) = (0, 0);
    for (id, reference) in references() {
        let samples = read_wav(&format!("{LIBRIVOX}/{id}.wav"));
        let t = transcribe(&model, &samples, &TranscribeOptions::default());
        assert_eq!(t.language, "en", "{id}");
        assert!(t.language_probability > 0.5, "{id}: {}", t.language_probability);
        let (reference, hypothesis) = (normalise(&reference), normalise(&t.text()));
        let e = word_errors(&reference, &hypothesis);
        eprintln!("{id}: {e}/{} errors: {:?}", reference.len(), t.text());
        errors += e;
        total += reference.len();
        assert_words_are_sane(&t.words(), samples.len() as f64 / 16000.0);
        assert_eq!(normalise(&t.words().iter().map(|w| w.text.as_str()).collect::<String>()), hypothesis);
    }
    let wer = errors as f64 / total as f64;
    eprintln!("whisper-base WER on LibriVox: {:.1}% ({errors}/{total})", wer * 100.0);
    assert!(wer <= 0.10, "WER {wer}");
}

#[test]
fn a_long_input_crosses_windows_without_losing_or_repeating_words() {
    // All five clips twice with a second of silence between: ~55 s, two windows or more.
    let refs = references();
    let mut samples = Vec::new();
    let mut reference = Vec::new();
    for _ in 0..2 {
        for (id, words) in &refs {
            samples.extend(read_wav(&format!("{LIBRIVOX}/{id}.wav")));
            samples.extend(std::iter::repeat_n(0.0, 16000));
            reference.extend(normalise(words));
        }
    }
    let model = load("whisper-base");
    let options = TranscribeOptions { language: Some("en".into()), ..TranscribeOptions::default() };
    let t = transcribe(&model, &samples, &options);
    let hypothesis = normalise(&t.text());
    let e = word_errors(&reference, &hypothesis);
    eprintln!("long input: {e}/{} errors, {:.1} s", reference.len(), t.duration);
    assert!(t.duration > 50.0);
    assert!((e as f64) / (reference.len() as f64) <= 0.10, "{e} errors: {}", t.text());
    let words = t.words();
    assert_words_are_sane(&words, t.duration);

    // The caption rules hold for what the words become.
    let profile = CaptionProfile::default();
    let cues = captions::cues_from_words(&words, &profile);
    assert!(cues.len() >= 4);
    let errors: Vec<_> =
        captions::check(&cues, &profile).into_iter().filter(|v| v.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn english_only_model_uses_its_own_prompt() {
    let model = load("whisper-tiny.en");
    assert!(!model.is_multilingual());
    let samples = read_wav(&format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0880.wav"));
    let t = transcribe(&model, &samples, &TranscribeOptions::default());
    assert_eq!(t.language, "en");
    let hypothesis = normalise(&t.text());
    let reference = normalise("he was not an ill disposed young man");
    assert!(word_errors(&reference, &hypothesis) <= 2, "{hypothesis:?}");
}

#[test]
fn silence_gives_no_text() {
    let model = load("whisper-tiny.en");
    let t = transcribe(&model, &vec![0.0; 16000 * 12], &TranscribeOptions::default());
    assert!(t.text().is_empty(), "hallucinated {:?}", t.text());
    assert!((t.duration - 12.0).abs() < 0.01);
}

#[test]
fn very_short_and_empty_inputs_do_not_panic() {
    let model = load("whisper-tiny.en");
    let t = transcribe(&model, &[], &TranscribeOptions::default());
    assert!(t.segments.is_empty());
    let t = transcribe(&model, &vec![0.01; 100], &TranscribeOptions::default());
    assert!(t.duration < 0.01);
    let one_second = read_wav(&format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0880.wav"));
    let _ = transcribe(&model, &one_second[..16000], &TranscribeOptions::default());
}

#[test]
fn a_forced_unknown_language_is_a_clear_error() {
    let model = load("whisper-base");
    let options = TranscribeOptions { language: Some("xx".into()), ..TranscribeOptions::default() };
    let err =
        model.transcribe(&mut InMemory::new(&[0.0; 16000]), &options, &mut |_| {}).expect_err("unknown");
    assert!(err.to_string().contains("\"xx\""), "{err}");
    let english_only = load("whisper-tiny.en");
    let options = TranscribeOptions { language: Some("es".into()), ..TranscribeOptions::default() };
    let err = english_only
        .transcribe(&mut InMemory::new(&[0.0; 16000]), &options, &mut |_| {})
        .expect_err("en only");
    assert_eq!(err.code(), "unknown_language");
}

/// The five clips twice, with `gap` seconds of quiet noise between (so the VAD sees
/// pauses, as in a real room), and their reference words.
fn clips_with_gaps(gap: f64) -> (Vec<f32>, Vec<String>) {
    let (mut samples, mut reference) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        for (id, words) in &references() {
            samples.extend(read_wav(&format!("{LIBRIVOX}/{id}.wav")));
            samples.extend(
                (0..(gap * 16000.0) as usize).map(|i| 0.0005 * ((i * 7919 % 200) as f32 / 100.0 - 1.0)),
            );
            reference.extend(normalise(words));
        }
    }
    (samples, reference)
}

/// Transcribes through the VAD gate, as the pipeline does; words on the input's
/// timeline.
fn transcribe_gated(model: &WhisperModel, samples: &[f32], batch_size: usize) -> (Transcription, Vec<Word>) {
    let vad = Vad::load(&models()).expect("Silero VAD loads");
    let detector =
        vad.detector(VadOptions { max_speech_s: Some(30.0), ..VadOptions::default() }).expect("detector");
    let mut gate = SpeechGate::new(InMemory::new(samples), detector);
    let options =
        TranscribeOptions { language: Some("en".into()), batch_size, ..TranscribeOptions::default() };
    let mut done = Vec::new();
    let t = model.transcribe(&mut gate, &options, &mut |s| done.push(s)).expect("transcribes");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "progress only moves forward: {done:?}");
    let map = gate.time_map();
    let words = t
        .words()
        .into_iter()
        .map(|mut w| {
            w.start = Millis::from_secs_f64(map.to_input_secs(w.start.as_secs_f64()));
            w.end = Millis::from_secs_f64(map.to_input_secs(w.end.as_secs_f64())).max(w.start);
            w
        })
        .collect();
    (t, words)
}

#[test]
fn batched_decoding_keeps_every_word_in_order_at_the_right_time() {
    let (samples, reference) = clips_with_gaps(2.5);
    let model = load("whisper-base");
    let (sequential, _) = transcribe_gated(&model, &samples, 1);
    let (batched, words) = transcribe_gated(&model, &samples, 4);
    let (e_seq, e_batch) = (
        word_errors(&reference, &normalise(&sequential.text())),
        word_errors(&reference, &normalise(&batched.text())),
    );
    eprintln!(
        "{} words: sequential {e_seq} errors, batched {e_batch}: {:?}",
        reference.len(),
        batched.text()
    );
    assert!(e_batch <= e_seq + 2, "batched {e_batch} errors vs sequential {e_seq}: {}", batched.text());
    // Windows are cut at pauses: each is one segment of at most 30 s, none overlap.
    assert!(batched.segments.len() >= 2, "{} windows", batched.segments.len());
    for pair in batched.segments.windows(2) {
        assert!(pair[0].end <= pair[1].start + 1e-6, "windows overlap: {pair:?}");
    }
    assert!(batched.segments.iter().all(|s| s.end - s.start <= 30.0 + 1e-6));
    assert_words_are_sane(&words, samples.len() as f64 / 16000.0);
    // The first clip's first word ("he", at the very start) and the second clip's
    // (after the first clip and its gap) are where they were spoken.
    let first_clip = read_wav(&format!("{LIBRIVOX}/{}.wav", references()[0].0)).len() as f64 / 16000.0;
    assert!(words[0].start.as_secs_f64() < 1.0, "{:?}", words[0]);
    let second =
        words.iter().find(|w| w.start.as_secs_f64() > first_clip).expect("words after the first clip");
    assert!(
        second.start.as_secs_f64() < first_clip + 2.5 + 1.5,
        "the second clip starts after {first_clip:.1} s + 2.5 s of pause, its first word at {:?}",
        second.start
    );
}

#[test]
fn batched_decoding_without_pauses_to_cut_at_still_transcribes() {
    // No VAD gate: nothing says where the pauses are, so windows are cut at 30 s.
    let mut samples = Vec::new();
    for (id, _) in references() {
        samples.extend(read_wav(&format!("{LIBRIVOX}/{id}.wav")));
    }
    let model = load("whisper-tiny.en");
    let options = TranscribeOptions { batch_size: 8, ..TranscribeOptions::default() };
    let t = transcribe(&model, &samples, &options);
    assert_eq!(t.segments.len(), samples.len().div_ceil(16000 * 30));
    assert!(t.words().len() > 50, "{}", t.text());
    assert_words_are_sane(&t.words(), samples.len() as f64 / 16000.0);
    // Silence in a batch is skipped, not decoded into stock phrases.
    let t = transcribe(&model, &vec![0.0; 16000 * 75], &options);
    assert!(t.text().is_empty(), "hallucinated {:?}", t.text());
}
