//! The operator's dashboard (`/`) in Debian's chromium against the real server:
//! a wrong key refused, sign in, upload with targets and review, live state and
//! progress, approval through a review link in a second tab, the download of an
//! MP4 that ffprobe reads back.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_localizes_a_video_from_the_dashboard() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = speech_clip(tmp.path());
    // A producer's key: upload and review (which reads), not admin.
    let made: Value = reqwest::Client::new()
        .post(format!("{}/v1/keys", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "name": "producer", "scopes": ["upload", "review"] }))
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
    let key = made["key"].as_str().unwrap_or_else(|| panic!("{made}")).to_owned();
    let page = reqwest::get(format!("{}/", server.url)).await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap_or("").contains("script-src 'self'"));
    assert!(!page.text().await.expect("html").contains(&key), "the page holds no key");

    let saved = tmp.path().join("es.mp4");
    let subtitles = tmp.path().join("talk.srt");
    std::fs::write(&subtitles, "1\n00:00:00,500 --> 00:00:02,500\nSubtitles brought along.\n").expect("srt");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/dashboard.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(format!("{}/", server.url))
        .arg(&key)
        .arg(&clip)
        .arg(&saved)
        .arg(&subtitles)
        .output()
        .await
        .expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    assert_eq!(report["errors"], Value::Array(Vec::new()), "{text}");
    assert_eq!(report["wrongKey"], "key refused", "{text}");
    assert_eq!(report["uploadStatus"], "uploaded", "{text}");
    assert_eq!(report["approveStatus"], "approved", "{text}");
    assert!(report["reviewLink"].as_str().unwrap_or("").contains("/review/"), "{text}");
    assert_eq!(report["finalState"], "completed", "{text}");
    // The states in the order a user saw them, and progress while a stage ran.
    let states: Vec<&str> =
        report["states"].as_array().expect("states").iter().filter_map(Value::as_str).collect();
    let at = |s: &str| states.iter().position(|x| *x == s).unwrap_or_else(|| panic!("{s} not seen: {text}"));
    assert!(at("awaiting_review") < at("completed"), "{text}");
    assert!(states.contains(&"processing"), "{text}");
    assert_eq!(report["progressShown"], true, "{text}");
    assert!(report["dubs"][0].as_str().unwrap_or("").starts_with("es"), "dub QA shown: {text}");
    assert_eq!(report["downloadName"], "talk.es.mp4", "{text}");
    // The second upload, with subtitles as its transcript: they are its captions.
    assert_eq!(report["subtitledUpload"], "uploaded", "{text}");
    assert_eq!(report["subtitledState"], "completed", "{text}");
    let id = report["subtitledId"].as_str().expect("the second video's id").trim().to_owned();
    let transcript: Value = reqwest::Client::new()
        .get(format!("{}/v1/videos/{id}/transcript", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("transcript")
        .json()
        .await
        .expect("json");
    assert_eq!(transcript["cues"][0]["text"], "Subtitles brought along.", "{transcript}");

    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .arg(&saved)
        .output()
        .expect("ffprobe");
    let streams = String::from_utf8_lossy(&probe.stdout).into_owned();
    assert!(streams.contains("video") && streams.matches("audio").count() == 2, "{streams}");
    server.stop().await;
}
