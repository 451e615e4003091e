//! Silero VAD on real speech (Debian's pocketsphinx-testdata, LibriVox readings at
//! 16 kHz) and on signals that hold none, with the model and ONNX Runtime fetched
//! by `babelcast models fetch`.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use babelcast_core::ErrorCode;
use babelcast_models::ModelsDir;
use babelcast_speech::vad::{SAMPLE_RATE, SpeechSpan, Vad, VadOptions};

const SPEECH: &str = "/usr/share/pocketsphinx/test/data/librivox";
const RATE: usize = SAMPLE_RATE as usize;

fn models() -> ModelsDir {
    ModelsDir::new(babelcast_models::default_dir())
}

/// One model for the whole test binary: clones share its session.
fn vad() -> Vad {
    static VAD: OnceLock<Vad> = OnceLock::new();
    VAD.get_or_init(|| Vad::load(&models()).expect("Silero VAD loads")).clone()
}

/// A 16 kHz mono 16-bit WAV as samples in [-1, 1].
fn read_wav(name: &str) -> Vec<f32> {
    let path = Path::new(SPEECH).join(name);
    let mut reader = hound::WavReader::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (apt install pocketsphinx-testdata)", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, SAMPLE_RATE, 16),
        "{}",
        path.display()
    );
    reader.samples::<i16>().map(|s| f32::from(s.expect("sample")) / 32768.0).collect()
}

fn silence(seconds: f64) -> Vec<f32> {
    vec![0.0; (seconds * RATE as f64) as usize]
}

/// Where a clip sits in the test signal, in samples.
#[derive(Debug, Clone, Copy)]
struct Placed {
    start: u64,
    end: u64,
}

/// 3 s of silence, a clip, 5 s of silence, another clip, 2 s of silence.
fn speech_signal() -> (Vec<f32>, [Placed; 2]) {
    let mut signal = silence(3.0);
    let place = |signal: &mut Vec<f32>, clip: Vec<f32>| {
        let start = signal.len() as u64;
        signal.extend(clip);
        Placed { start, end: signal.len() as u64 }
    };
    let a = place(&mut signal, read_wav("sense_and_sensibility_01_austen_64kb-0870.wav"));
    signal.extend(silence(5.0));
    let b = place(&mut signal, read_wav("sense_and_sensibility_01_austen_64kb-0880.wav"));
    signal.extend(silence(2.0));
    (signal, [a, b])
}

/// The options for the speech tests: a pause of a second is enough to split.
fn test_options() -> VadOptions {
    VadOptions { min_silence_ms: 1000, ..VadOptions::default() }
}

fn seconds(samples: u64) -> f64 {
    samples as f64 / RATE as f64
}

fn show(spans: &[SpeechSpan]) -> String {
    spans
        .iter()
        .map(|s| format!("{:.2}-{:.2}s", seconds(s.start), seconds(s.end)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn each_clip_is_one_span_and_the_silence_between_is_skipped() {
    let (signal, clips) = speech_signal();
    let options = test_options();
    let spans = vad().speech_spans(&signal, &options).expect("detect");
    eprintln!("clips {clips:?}; spans {}", show(&spans));

    assert_eq!(spans.len(), 2, "one span per clip: {}", show(&spans));
    let tolerance = RATE as u64 / 2;
    for (span, clip) in spans.iter().zip(clips) {
        // The span starts at most the 400 ms pad (plus a frame) before the clip,
        // and no later than half a second into it (a reading opens with a breath).
        assert!(
            span.start + tolerance >= clip.start && span.start <= clip.start + tolerance,
            "{span:?} {clip:?}"
        );
        assert!(span.end + tolerance >= clip.end && span.end <= clip.end + tolerance, "{span:?} {clip:?}");
    }
    // Of the 5 s between the clips, at least 4 s (all but the two pads) is skipped.
    let skipped = spans[1].start - spans[0].end;
    assert!(skipped >= 4 * RATE as u64, "only {:.2}s skipped", seconds(skipped));
    assert!(spans[0].start >= 2 * RATE as u64, "the leading silence is skipped: {}", show(&spans));
}

#[test]
fn streaming_in_uneven_chunks_gives_the_same_spans_and_releases_them_early() {
    let (signal, clips) = speech_signal();
    let options = test_options();
    let whole = vad().speech_spans(&signal, &options).expect("detect");

    let mut detector = vad().detector(options).expect("detector");
    let sizes = [1000, 7, 16000, 1, 511, 512, 513, 4096, 33333];
    let (mut rest, mut streamed, mut i) = (&signal[..], Vec::new(), 0);
    let mut first_released_at = None;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        let got = detector.push(&rest[..n]).expect("push");
        if !got.is_empty() && first_released_at.is_none() {
            first_released_at = Some(detector.samples_pushed());
        }
        streamed.extend(got);
        rest = &rest[n..];
        i += 1;
    }
    assert_eq!(detector.samples_pushed(), signal.len() as u64);
    streamed.extend(detector.finish().expect("finish"));
    assert_eq!(streamed, whole);

    // The first span is final before the second clip starts: nobody has to wait
    // for the end of an hour-long stream to start transcribing.
    let released = first_released_at.expect("a span came out of push");
    assert!(released < clips[1].start, "released at {:.2}s", seconds(released));
}

#[test]
fn digital_silence_and_faint_noise_hold_no_speech() {
    let options = VadOptions::default();
    assert_eq!(vad().speech_spans(&silence(10.0), &options).expect("silence"), vec![]);

    // White noise at amplitude 0.001 (-60 dBFS), from a fixed xorshift seed.
    let mut x: u32 = 0x9e37_79b9;
    let noise: Vec<f32> = (0..10 * RATE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * 0.001
        })
        .collect();
    assert_eq!(vad().speech_spans(&noise, &options).expect("noise"), vec![]);

    assert_eq!(vad().speech_spans(&[], &options).expect("empty"), vec![]);
}

#[test]
fn a_steady_tone_is_not_speech() {
    // 5 s of 440 Hz at half scale: music-like, but no speech.
    let tone: Vec<f32> = (0..5 * RATE)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / RATE as f32).sin())
        .collect();
    let spans = vad().speech_spans(&tone, &VadOptions::default()).expect("tone");
    assert_eq!(spans, vec![], "{}", show(&spans));
}

#[test]
fn detection_runs_many_times_faster_than_real_time() {
    // 25 s: the speech signal (20 s) and the start of it again.
    let (mut signal, _) = speech_signal();
    signal.extend_from_within(..5 * RATE);
    let vad = vad(); // loaded before the clock starts
    let started = Instant::now();
    vad.speech_spans(&signal, &VadOptions::default()).expect("detect");
    let elapsed = started.elapsed().as_secs_f64();
    let speed = signal.len() as f64 / RATE as f64 / elapsed;
    eprintln!("{:.1}s of audio in {elapsed:.3}s: {speed:.0}x real time", signal.len() as f64 / RATE as f64);
    // A loose floor, so a loaded CI machine does not fail it: the point is that VAD
    // costs next to nothing beside Whisper.
    assert!(speed > 20.0, "{speed:.0}x real time");
}

#[test]
fn a_missing_model_names_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = Vad::load(&ModelsDir::new(tmp.path())).expect_err("no model");
    assert_eq!(err.code(), "model_missing");
    let msg = err.to_string();
    assert!(msg.contains("silero_vad.onnx") && msg.contains("babelcast models fetch"), "{msg}");

    // With the model there but not ONNX Runtime, the library is named.
    let real = models().require("silero-vad").expect("the real model is fetched");
    std::fs::create_dir(tmp.path().join("silero-vad")).expect("mkdir");
    std::fs::copy(real.join("silero_vad.onnx"), tmp.path().join("silero-vad/silero_vad.onnx")).expect("copy");
    let err = Vad::load(&ModelsDir::new(tmp.path())).expect_err("no runtime");
    let msg = err.to_string();
    assert!(msg.contains("libonnxruntime.so") && msg.contains("babelcast models fetch"), "{msg}");
}

#[test]
fn a_file_that_is_not_the_model_fails_with_its_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fake = tmp.path().join("silero_vad.onnx");
    std::fs::write(&fake, b"not an onnx graph").expect("write");
    let runtime =
        models().require("onnxruntime").expect("the runtime is fetched").join("libonnxruntime.so.1.31.1");
    let err = Vad::load_files(&fake, &runtime).expect_err("garbage");
    assert_eq!(err.code(), "vad_load_failed");
    assert!(err.to_string().contains(&fake.display().to_string()), "{err}");
}
