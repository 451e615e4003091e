//! The operator's deletes, through the real server and pipeline: a video deleted
//! while one of its stages runs, the upload removed once a video is done
//! (`keep_source = false`), and the retention age, with the cache entries other
//! videos use left alone.

mod common;

use common::*;

/// The entries of a cache folder (`cache/encode`, ...), hidden ones left out.
fn entries(data: &Path, stage: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(data.join("cache").join(stage)) else { return Vec::new() };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

async fn delete(server: &Server, id: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .delete(format!("{}/v1/videos/{id}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("delete")
        .status()
        .as_u16()
}

/// A reading (`speech`, a WAV) over another picture than the speech clip's:
/// other content, so other cache keys.
fn other_clip(dir: &Path, speech: &str) -> PathBuf {
    let path = dir.join("other.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-i",
        speech,
        "-shortest",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        path.to_str().expect("utf-8"),
    ]);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_deleted_while_a_stage_runs_leaves_nothing_and_the_worker_moves_on() {
    // One worker: the next video's first stage cannot start before the deleted
    // video's running stage has ended (and cleaned up after itself).
    let server = Server::start_with_workers(1, |_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let (status, body) =
        server.upload("talk.mp4", clip, Some(r#"{"language":"en","to":["es"]}"#), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let db = server.pipeline.db().clone();
    let started = Instant::now();
    let running = loop {
        let events = db.events(&id, 0).await.expect("events");
        // Progress: the stage is at work (not just claimed), so it writes after the delete.
        if let Some(e) = events.iter().find(|e| e.kind == "progress") {
            break e.stage.clone().unwrap_or_default();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no stage at work: {events:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delete(&server, &id, "wrong").await, 401);
    assert_eq!(delete(&server, &id, TOKEN).await, 200, "deleted while {running} runs");
    assert_eq!(delete(&server, &id, TOKEN).await, 200, "deleting again answers the same");
    assert_eq!(delete(&server, "0123456789abcdef0123456789abcdef", TOKEN).await, 404);
    assert_eq!(server.get_json(&format!("/v1/videos/{id}")).await.0, 404);
    let (_, list) = server.get_json("/v1/videos").await;
    assert_eq!(list["videos"], Value::Array(Vec::new()), "{list}");

    // The worker moves on to the next video, with content of its own.
    let other = std::fs::read(other_clip(tmp.path(), SPEECH_WAV)).expect("clip");
    let (status, body) = server.upload("other.mp4", other, Some(r#"{"language":"en"}"#), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let next = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&next).await;
    assert_eq!(video["state"], "completed", "{video}");

    // The deleted video's stage ended before that one began: nothing it wrote
    // came back, and the cache holds only the other video's entries.
    assert!(!server.data.join(format!("videos/{id}")).exists(), "{running} re-created the folder");
    assert!(db.video(&id).await.expect("video").is_none());
    assert!(db.events(&id, 0).await.expect("events").is_empty(), "events written after the delete");
    assert!(db.jobs(&id).await.expect("jobs").is_empty());
    assert_eq!(entries(&server.data, "encode").len(), 1, "{:?}", entries(&server.data, "encode"));
    assert_eq!(entries(&server.data, "transcribe").len(), 1, "{:?}", entries(&server.data, "transcribe"));
    for stage in ["translate", "dub", "voice"] {
        assert!(entries(&server.data, stage).is_empty(), "{stage}: {:?}", entries(&server.data, stage));
    }
    assert!(server.data.join(format!("videos/{next}/hls/master.m3u8")).is_file());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_uploads_and_expired_videos_go_and_shared_cache_entries_stay() {
    let server = Server::start(|config, _| config.keep_source = false).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let upload = |options: &'static str| {
        let clip = clip.clone();
        let server = &server;
        async move {
            let (status, body) = server.upload("talk.mp4", clip, Some(options), Some(TOKEN)).await;
            assert_eq!(status, 202, "{body}");
            body["id"].as_str().expect("id").to_owned()
        }
    };
    let done = upload(r#"{"language":"en"}"#).await;
    let video = server.wait_final(&done).await;
    assert_eq!(video["state"], "completed", "{video}");
    // The same content, held for review: not finished.
    let held = upload(r#"{"language":"en","review":true}"#).await;
    let video = server.wait_final(&held).await;
    assert_eq!(video["state"], "awaiting_review", "{video}");

    // Done: the upload is gone, the outputs stay. Held: the upload stays.
    let folder = |id: &str| server.data.join(format!("videos/{id}"));
    assert!(!folder(&done).join("source.mp4").exists(), "keep_source = false");
    assert!(folder(&done).join("captions/en.vtt").is_file());
    assert!(folder(&done).join("hls/master.m3u8").is_file());
    assert!(folder(&held).join("source.mp4").is_file(), "not done yet");

    // The retention age takes the finished video only, and the cache entries
    // the held one uses too stay.
    let encode = entries(&server.data, "encode");
    assert_eq!(encode.len(), 1, "one content, one ladder: {encode:?}");
    assert_eq!(server.pipeline.delete_expired(Duration::from_secs(3600)).await.expect("expire"), 0);
    assert_eq!(server.pipeline.delete_expired(Duration::ZERO).await.expect("expire"), 1);
    assert!(!folder(&done).exists());
    assert!(server.pipeline.db().video(&done).await.expect("video").is_none());
    assert!(folder(&held).join("hls/master.m3u8").is_file());
    assert_eq!(entries(&server.data, "encode"), encode, "the held video still uses it");
    assert_eq!(server.get_json(&format!("/v1/videos/{held}")).await.0, 200);

    // Deleting the last video that uses them takes the entries too.
    assert_eq!(delete(&server, &held, TOKEN).await, 200);
    for stage in ["encode", "transcribe"] {
        assert!(entries(&server.data, stage).is_empty(), "{stage}: {:?}", entries(&server.data, stage));
    }
    assert!(!folder(&held).exists());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_videos_sentences_and_clips_go_and_another_videos_stay() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    // Two readings of different text: their sentences and clips differ.
    let other = other_clip(
        tmp.path(),
        "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
    );
    let mut ids = Vec::new();
    for clip in [speech_clip(tmp.path()), other] {
        let bytes = std::fs::read(&clip).expect("clip");
        let options = r#"{"language":"en","to":["es"]}"#;
        let (status, body) = server.upload("talk.mp4", bytes, Some(options), Some(TOKEN)).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        let video = server.wait_final(&id).await;
        assert!(video["state"].as_str().unwrap_or("").starts_with("completed"), "{video}");
        ids.push(id);
    }
    let (sentences, clips) = (entries(&server.data, "sentences"), entries(&server.data, "voice"));
    assert!(sentences.len() >= 2 && clips.len() >= 2, "{sentences:?} {clips:?}");

    // The first video's text goes with it; the second's stays.
    assert_eq!(delete(&server, &ids[0], TOKEN).await, 200);
    let (left, clips_left) = (entries(&server.data, "sentences"), entries(&server.data, "voice"));
    assert!(!left.is_empty() && left.len() < sentences.len(), "{left:?} of {sentences:?}");
    assert!(!clips_left.is_empty() && clips_left.len() < clips.len(), "{clips_left:?} of {clips:?}");
    assert!(left.iter().all(|s| sentences.contains(s)));
    // And the last one takes the rest.
    assert_eq!(delete(&server, &ids[1], TOKEN).await, 200);
    assert!(entries(&server.data, "sentences").is_empty(), "{:?}", entries(&server.data, "sentences"));
    assert!(entries(&server.data, "voice").is_empty(), "{:?}", entries(&server.data, "voice"));
    server.stop().await;
}
