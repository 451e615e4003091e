//! The audio proxy on real files made with ffmpeg, real speech, and the bad input
//! users send.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use babelcast_core::{AudioStream, ErrorCode, MediaFacts};
use babelcast_media::proxy::{MAX_BUFFERED_BYTES, SAMPLE_RATE};
use babelcast_media::{AudioDecoder, AudioProxy, ProxyError};
use babelcast_process::Program;

mod common;
use common::{ffmpeg, probe};

const SPEECH_WAV: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn decoder() -> AudioDecoder {
    AudioDecoder::new(Program::ffmpeg())
}

fn open(path: &Path) -> AudioProxy {
    decoder().open(path, &probe(path), None).expect("opens")
}

/// What a caller believing the file holds one audio stream would pass: for input
/// the probe would have refused, to show ffmpeg refuses it too.
fn claimed_audio() -> MediaFacts {
    MediaFacts {
        container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        container_long_name: None,
        duration_secs: Some(3.0),
        size_bytes: None,
        bit_rate: None,
        video: Vec::new(),
        audio: vec![AudioStream {
            index: 0,
            codec: "aac".into(),
            channels: 2,
            sample_rate: 48000,
            language: None,
            bit_rate: None,
            duration_secs: Some(3.0),
        }],
        subtitles: Vec::new(),
    }
}

fn read_all(proxy: &mut AudioProxy) -> Result<Vec<f32>, ProxyError> {
    let mut samples = Vec::new();
    while let Some(chunk) = proxy.next_chunk(4096)? {
        samples.extend_from_slice(&chunk);
    }
    Ok(samples)
}

/// Sign changes per second: twice the frequency of a pure tone.
fn zero_crossings_per_sec(samples: &[f32]) -> f64 {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    crossings as f64 / (samples.len() as f64 / f64::from(SAMPLE_RATE))
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// A reaped process has no /proc entry; a zombie would show state Z.
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// 3 s of 48 kHz stereo AAC in MP4: a 440 Hz tone of amplitude 0.5 on the left,
/// silence on the right.
fn make_stereo_aac(dir: &Path) -> PathBuf {
    let path = dir.join("tone left.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=0.5*sin(440*2*PI*t)|0:s=48000:d=3:c=stereo",
        "-c:a",
        "aac",
        utf8(&path),
    ]);
    path
}

/// 20 minutes of a 300 Hz tone, 8 kHz 8-bit WAV (9.6 MB), made once per build
/// directory and shared by the tests that need a long input.
fn long_tone() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("proxy-tone-20min-8k-u8.wav");
        if !path.exists() {
            // Written aside and renamed, so a concurrent test run never sees half a file.
            let partial = path.with_extension(format!("{}.wav", std::process::id()));
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=300:sample_rate=8000:duration=1200",
                "-c:a",
                "pcm_u8",
                utf8(&partial),
            ]);
            std::fs::rename(&partial, &path).expect("rename");
        }
        path
    })
}

#[test]
fn stereo_aac_becomes_16k_mono_with_the_tone_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = make_stereo_aac(tmp.path());
    let mut proxy = open(&path);
    let duration = proxy.duration_secs().expect("probed duration");
    assert!((duration - 3.0).abs() < 0.1, "{duration}");
    let samples = read_all(&mut proxy).expect("decodes");

    // 3 s at 16 kHz, give or take one AAC frame (1024 samples at 48 kHz) of priming.
    assert!(samples.len().abs_diff(48_000) <= 1024 / 3, "{} samples", samples.len());
    assert_eq!(proxy.samples_read(), samples.len() as u64);
    assert!(proxy.is_done());
    assert_eq!(proxy.progress(), Some(1.0));
    assert!(samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0));

    let zcr = zero_crossings_per_sec(&samples);
    assert!((zcr - 880.0).abs() < 880.0 * 0.02, "zero crossings per second: {zcr}");
    // ffmpeg's `-ac 1` is (L + R) / √2: a 0.5 sine on one side becomes a 0.354 sine,
    // whose RMS is 0.25. Mixed, not just the left channel taken (RMS 0.354).
    let level = rms(&samples[1600..samples.len() - 1600]);
    assert!((level - 0.25).abs() < 0.01, "rms {level}");
}

#[test]
fn speech_at_16k_is_passed_through_unchanged() {
    let path = Path::new(SPEECH_WAV);
    assert!(path.exists(), "{SPEECH_WAV} is missing: install the Debian package pocketsphinx-testdata");
    // The WAV's own samples: 16-bit mono at 16 kHz, the data chunk after a 44-byte header.
    let bytes = std::fs::read(path).expect("read wav");
    assert_eq!(&bytes[36..40], b"data", "the canonical 44-byte header");
    let expected: Vec<f32> =
        bytes[44..].chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();

    let mut proxy = open(path);
    let duration = proxy.duration_secs().expect("probed duration");
    assert!((duration - expected.len() as f64 / 16000.0).abs() < 0.01, "{duration}");
    let samples = read_all(&mut proxy).expect("decodes");
    assert_eq!(samples.len(), expected.len());
    let worst = samples.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
    assert!(rms(&samples) > 0.01, "it is speech, not silence");
}

#[test]
fn odd_chunk_sizes_read_the_same_samples() {
    let path = Path::new(SPEECH_WAV);
    let facts = probe(path);
    let whole = read_all(&mut decoder().open(path, &facts, None).expect("opens")).expect("decodes");

    let mut proxy = decoder().open(path, &facts, None).expect("opens");
    let mut pieces = Vec::new();
    // Sizes that never line up with ffmpeg's writes or the pipe's reads.
    let sizes = [1, 7, 333, 4097, 65_537, 3];
    let mut buf = vec![0.0f32; 65_537];
    for size in sizes.iter().cycle() {
        let n = proxy.read(&mut buf[..*size]).expect("reads");
        assert!(n == *size || proxy.is_done(), "a short read before the end");
        if n == 0 {
            break;
        }
        pieces.extend_from_slice(&buf[..n]);
    }
    assert_eq!(pieces.len(), whole.len());
    assert!(pieces == whole, "the same samples, bit for bit");
    // Reading after the end stays at the end.
    assert_eq!(proxy.read(&mut buf).expect("ended"), 0);
    assert_eq!(proxy.next_chunk(10).expect("ended"), None);
}

#[test]
fn the_chosen_audio_stream_is_decoded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("two tracks.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=16000:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=16000:duration=1",
        "-map",
        "0",
        "-map",
        "1",
        "-c:a",
        "flac",
        utf8(&path),
    ]);
    let facts = probe(&path);
    assert_eq!(facts.audio.len(), 2);
    for (track, hz) in [(None, 440.0), (Some(0), 440.0), (Some(1), 1000.0)] {
        let mut proxy = decoder().open(&path, &facts, track).expect("opens");
        let samples = read_all(&mut proxy).expect("decodes");
        let zcr = zero_crossings_per_sec(&samples);
        assert!((zcr - 2.0 * hz).abs() < 2.0 * hz * 0.02, "track {track:?}: {zcr} crossings/s");
    }
    let err = decoder().open(&path, &facts, Some(2)).expect_err("only two");
    assert_eq!(err.code(), "audio_track_not_found");
    assert!(err.is_client_error());
}

#[test]
fn a_video_without_audio_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("silent film.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5", "-t", "1", "-c:v", "mpeg4", utf8(&path)]);

    let err = decoder().open(&path, &probe(&path), None).expect_err("no audio");
    assert_eq!(err.code(), "no_audio_stream");
    assert!(err.to_string().starts_with("no audio stream in "), "{err}");

    // Even when the caller's facts are wrong, it is the same error, not ffmpeg's.
    let mut proxy = decoder().open(&path, &claimed_audio(), None).expect("ffmpeg starts");
    let err = read_all(&mut proxy).expect_err("no audio");
    assert_eq!(err.code(), "no_audio_stream", "{err}");
}

#[test]
fn a_text_file_named_mp4_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("notes.mp4");
    std::fs::write(&path, "these are my notes, not a video\n").expect("write");
    let mut proxy = decoder().open(&path, &claimed_audio(), None).expect("ffmpeg starts");
    let err = read_all(&mut proxy).expect_err("not media");
    assert_eq!(err.code(), "audio_decode_failed");
    assert!(err.is_client_error());
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains("notes.mp4") && msg.contains("Invalid data found"), "{msg}");
    // Later reads do not pretend the audio simply ended.
    assert!(proxy.next_chunk(10).is_err());
}

#[test]
fn a_playlist_disguised_as_mp4_is_refused_not_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Following it would decode real audio, so a refusal is the whitelist at work.
    let target = make_stereo_aac(tmp.path());
    let path = tmp.path().join("evil.mp4");
    std::fs::write(
        &path,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nfile:{}\n#EXT-X-ENDLIST\n",
            utf8(&std::path::absolute(&target).expect("absolute"))
        ),
    )
    .expect("write");
    let mut proxy = decoder().open(&path, &claimed_audio(), None).expect("ffmpeg starts");
    let mut buf = vec![0.0f32; 1024];
    let err = proxy.read(&mut buf).expect_err("refused");
    assert_eq!(err.code(), "audio_decode_failed");
    assert!(err.to_string().contains("its format (hls) is not an accepted media container"), "{err}");
    assert_eq!(proxy.samples_read(), 0);
}

#[test]
fn damaged_files_give_what_can_be_decoded_or_a_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A Matroska file cut short: ffmpeg decodes up to the cut and says so.
    let full = tmp.path().join("full.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=10",
        "-c:a",
        "libopus",
        utf8(&full),
    ]);
    let bytes = std::fs::read(&full).expect("read");
    let cut = tmp.path().join("cut.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() * 4 / 10]).expect("write");
    let mut proxy = decoder().open(&cut, &probe(&cut), None).expect("opens");
    let samples = read_all(&mut proxy).expect("decodes what it can");
    assert!(samples.len() > 16_000 && samples.len() < 10 * 16_000, "{} samples", samples.len());
    assert!(proxy.warnings().is_some_and(|w| w.contains("File ended prematurely")), "{:?}", proxy.warnings());

    // An MP4 cut short loses its index (written last): nothing can be decoded.
    let mp4 = make_stereo_aac(tmp.path());
    let bytes = std::fs::read(&mp4).expect("read");
    let cut = tmp.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let mut proxy = decoder().open(&cut, &claimed_audio(), None).expect("ffmpeg starts");
    let err = read_all(&mut proxy).expect_err("no index");
    assert_eq!(err.code(), "audio_decode_failed");
    assert!(err.to_string().contains("moov atom not found"), "{err}");
}

#[test]
fn non_finite_float_samples_become_silence() {
    // A 32-bit float WAV holding NaN, infinities and huge values, written by hand.
    let values = [0.25f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -3.0];
    let data: Vec<u8> = values.iter().cycle().take(6000).flat_map(|v| v.to_le_bytes()).collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&64_000u32.to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&32u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("float.wav");
    std::fs::write(&path, wav).expect("write");

    let samples = read_all(&mut open(&path)).expect("decodes");
    assert_eq!(samples.len(), 6000);
    assert_eq!(&samples[..6], &[0.25, 0.0, 0.0, 0.0, 1.0, -1.0]);
}

#[test]
fn dropping_the_proxy_mid_stream_stops_ffmpeg() {
    let path = long_tone();
    let mut proxy = open(path);
    let chunk = proxy.next_chunk(16_000).expect("reads").expect("audio");
    assert_eq!(chunk.len(), 16_000);
    let pid = proxy.pid().expect("ffmpeg runs");
    assert!(is_running(pid));
    // 19 minutes and more are still to come; ffmpeg waits on the full pipe.
    drop(proxy);
    assert!(!is_running(pid), "ffmpeg ({pid}) outlived its proxy");
}

#[test]
fn a_long_input_streams_through_a_fixed_buffer() {
    let path = long_tone();
    let mut proxy = open(path);
    let duration = proxy.duration_secs().expect("probed duration");
    assert!((duration - 1200.0).abs() < 0.5, "{duration}");

    // The API only ever hands out what fits the caller's buffer; here, Whisper's 30 s
    // window, reused. What waits inside is bounded too: a small fraction of the
    // 77 MB this input decodes to.
    let mut window = vec![0.0f32; 30 * SAMPLE_RATE as usize];
    const { assert!(MAX_BUFFERED_BYTES < 1 << 20) };
    let (mut total, mut windows, mut sum_squares) = (0u64, 0u32, 0.0f64);
    let mut half_way = None;
    loop {
        let n = proxy.read(&mut window).expect("reads");
        if n == 0 {
            break;
        }
        assert!(n == window.len() || proxy.is_done());
        total += n as u64;
        windows += 1;
        sum_squares += window[..n].iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        if windows == 20 {
            half_way = proxy.progress();
        }
        if windows == 1 {
            let zcr = zero_crossings_per_sec(&window[..n]);
            assert!((zcr - 600.0).abs() < 12.0, "{zcr}");
        }
    }
    assert_eq!(total, 1200 * u64::from(SAMPLE_RATE));
    assert_eq!(proxy.samples_read(), total);
    assert_eq!(windows, 40);
    let half_way = half_way.expect("known duration");
    assert!((half_way - 0.5).abs() < 0.01, "{half_way}");
    assert_eq!(proxy.progress(), Some(1.0));
    // lavfi's sine has amplitude 1/8: RMS 0.088 throughout, no gaps.
    let level = (sum_squares / total as f64).sqrt();
    assert!((level - 0.125 / 2f64.sqrt()).abs() < 0.005, "rms {level}");
}
