//! The real server, in-process on port 0, driven over HTTP: uploads with real
//! speech through real ffmpeg and Whisper, signed playback, events, metrics, the
//! OpenAPI description, and the bad input users and attackers send.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_becomes_a_captioned_stream_and_the_same_upload_again_comes_from_the_cache() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");

    let (status, body) =
        server.upload("talk.mp4", clip.clone(), Some(r#"{"language":"en"}"#), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    assert_eq!(video["outputs"]["master"], format!("videos/{id}/hls/master.m3u8"));
    let captions: Vec<&str> = video["outputs"]["captions"]
        .as_array()
        .expect("captions")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(captions, [format!("videos/{id}/captions/en.srt"), format!("videos/{id}/captions/en.vtt")]);
    let vtt = std::fs::read_to_string(server.data.join(captions[1])).expect("vtt");
    assert!(vtt.to_lowercase().contains("dashwood"), "real speech was transcribed: {vtt}");
    let watch = video["watch_url"].as_str().expect("a viewer link").to_owned();
    assert!(watch.starts_with(&format!("/watch/{id}/bl_view.{id}.")), "{watch}");

    // Signed playback: every URI of the package works under the token.
    let (status, playback) = server.get_json(&format!("/v1/videos/{id}/playback")).await;
    assert_eq!(status, 200);
    let url = playback["url"].as_str().expect("url").to_owned();
    let master = reqwest::get(format!("{}{url}", server.url)).await.expect("get").text().await.expect("text");
    assert!(master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"en\""), "{master}");
    let files = fetch_package(&server.url, &url).await;
    assert!(
        files.iter().any(|f| f.ends_with(".vtt")) && files.iter().any(|f| f.ends_with(".m4s")),
        "{files:?}"
    );

    // Tampered, expired and other-video tokens are refused.
    let token = url.split('/').nth(4).expect("token").to_owned();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('0') { '1' } else { '0' });
    let forbidden = |t: String, v: String| {
        let base = server.url.clone();
        async move {
            reqwest::get(format!("{base}/v1/play/{v}/{t}/master.m3u8")).await.expect("get").status().as_u16()
        }
    };
    assert_eq!(forbidden(tampered, id.clone()).await, 403);
    let signer = Signer::new(KEY.to_vec());
    assert_eq!(forbidden(signer.token(&id, 1), id.clone()).await, 403, "expired");
    assert_eq!(forbidden(signer.token("someoneelse", i64::MAX), id.clone()).await, 403);
    assert_eq!(
        forbidden(token.clone(), "0123456789abcdef0123456789abcdef".into()).await,
        403,
        "another video"
    );
    let escape = reqwest::get(format!("{}/v1/play/{id}/{token}/..%2F..%2Fbabelcast.db", server.url))
        .await
        .expect("get");
    assert_eq!(escape.status(), 404, "no way out of the package folder");

    // The event log, as server-sent events, ends with the final state.
    let sse = reqwest::Client::new()
        .get(format!("{}/v1/videos/{id}/events", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sse")
        .text()
        .await
        .expect("text");
    for kind in ["received", "stage_started", "playable", "stage_finished", "captions_published", "completed"]
    {
        assert!(sse.contains(&format!("event: {kind}\n")), "{kind} missing from {sse}");
    }
    assert!(
        sse.find("event: playable").expect("playable")
            < sse.find("event: captions_published").expect("captions")
    );

    // The same content again is served from the stage cache.
    let started = Instant::now();
    let (status, body) = server.upload("again.mkv", clip, Some(r#"{"language":"en"}"#), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let again = body["id"].as_str().expect("id").to_owned();
    assert_ne!(again, id);
    let video = server.wait_final(&again).await;
    assert_eq!(video["state"], "completed");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let events = server.pipeline.db().events(&again, 0).await.expect("events");
    let mut cached: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "stage_finished" && e.data.as_ref().is_some_and(|d| d["cached"] == true))
        .filter_map(|e| e.stage.clone())
        .collect();
    // The two run at once; either may finish first.
    cached.sort();
    assert_eq!(cached, ["encode", "transcribe"]);

    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("babelcast_jobs{stage=\"encode\",state=\"done\"} 2"), "{metrics}");
    assert!(metrics.contains("babelcast_stage_duration_seconds_sum{stage=\"transcribe\"}"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_clear_errors_nothing_escapes_and_the_server_keeps_serving() {
    let server = Server::start(|_, s| s.max_upload_bytes = 2 << 20).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_owned();

    // Refused before the body is read: a small body, as a client using
    // `Expect: 100-continue` would not even send more.
    let head = clip[..1024].to_vec();
    let (status, body) = server.upload("a.mp4", head.clone(), None, None).await;
    assert_eq!((status, code(&body)), (401, "token_missing".into()));
    let (status, body) = server.upload("a.mp4", head.clone(), None, Some("wrong")).await;
    assert_eq!((status, code(&body)), (401, "token_invalid".into()));
    let (status, body) = server.upload("notes.txt", head, None, Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (415, "unsupported_file_name".into()));
    let (status, body) = server.upload("text.mp4", b"hello, not a video".to_vec(), None, Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (422, "not_media".into()), "{body}");
    let (status, body) = server.upload("empty.mp4", Vec::new(), None, Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (422, "file_empty".into()), "{body}");
    let (status, body) = server.upload("big.mp4", vec![0u8; 3 << 20], None, Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (413, "upload_too_large".into()), "{body}");
    // Options come before the file and are refused before it is read.
    let head = clip[..1024].to_vec();
    let (status, body) =
        server.upload("a.mp4", head.clone(), Some(r#"{"language":"english"}"#), Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (400, "invalid_options".into()), "{body}");
    // Shaped like a code, but no language Whisper knows.
    let (status, body) =
        server.upload("a.mp4", head.clone(), Some(r#"{"language":"xx"}"#), Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (400, "invalid_options".into()), "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("unknown language \"xx\""), "{body}");
    let (status, body) =
        server.upload("a.mp4", head.clone(), Some(r#"{"language":"en","to":["ja"]}"#), Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (400, "invalid_options".into()), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("cannot translate en to ja") && message.contains("es") && message.contains("it"),
        "{message}"
    );
    let bad_glossary = r#"{"glossary":{"keep":["River"],"force":{"river":"río"}}}"#;
    let (status, body) = server.upload("a.mp4", head.clone(), Some(bad_glossary), Some(TOKEN)).await;
    assert!(
        status == 400 && body["error"]["message"].as_str().unwrap_or("").contains("conflicting"),
        "{body}"
    );
    let (status, body) = server.upload("a.mp4", head, Some(r#"{"colour":"red"}"#), Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (400, "invalid_options".into()), "{body}");
    let wav = tmp.path().join("voice.wav");
    ffmpeg(&["-f", "lavfi", "-i", "sine", "-t", "1", wav.to_str().expect("utf-8")]);
    let (status, body) =
        server.upload("voice.mkv", std::fs::read(&wav).expect("wav"), None, Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (422, "no_video_stream".into()), "{body}");

    // An upload cut off halfway: the connection closes mid-body.
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    let boundary = "XyZ";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    );
    let total = head.len() + clip.len() + boundary.len() + 8;
    write!(
        stream,
        "POST /v1/videos HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n{head}"
    )
    .expect("write");
    stream.write_all(&clip[..clip.len() / 2]).expect("write half");
    stream.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 400"), "{reply}");

    // A name that tries to leave the data folder is only a display name.
    let (status, body) = server.upload("../../../escaped.mp4", clip.clone(), None, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert_eq!(video["source_name"], "escaped.mp4");
    assert!(!server.data.join("../escaped.mp4").exists() && !tmp.path().join("escaped.mp4").exists());
    assert!(server.data.join(format!("videos/{id}/source.mp4")).is_file());
    assert_eq!(video["state"], "completed", "the server kept serving: {video}");

    let leftovers: Vec<_> =
        std::fs::read_dir(server.data.join("uploads")).expect("uploads").flatten().collect();
    assert!(leftovers.is_empty(), "refused uploads are removed: {leftovers:?}");
    let (status, _) = server.get_json("/v1/videos/not-a-video").await;
    assert_eq!(status, 404);
    let (status, _) = server.get_json("/v1/videos/..%2F..%2Fetc").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_speech_fails_the_video_is_still_published_without_captions() {
    let empty_models = tempfile::tempdir().expect("tmp");
    let models = empty_models.path().to_owned();
    let server = Server::start(move |p, _| p.models_dir = models).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let (status, body) = server.upload("talk.mp4", clip, None, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed_with_warnings", "{video}");
    let warnings = video["warnings"].to_string();
    assert!(
        warnings.contains("published without captions") && warnings.contains("babelcast models fetch"),
        "{warnings}"
    );
    let transcribe = video["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "transcribe")
        .expect("stage")
        .clone();
    assert_eq!(
        (transcribe["state"].as_str(), transcribe["attempts"].as_i64()),
        (Some("dead"), Some(1)),
        "a missing model is not retried: it stays missing"
    );
    assert!(video["outputs"]["master"].is_string(), "the video is published");
    let master =
        std::fs::read_to_string(server.data.join(format!("videos/{id}/hls/master.m3u8"))).expect("master");
    assert!(!master.contains("SUBTITLES"), "{master}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    assert!(!events.iter().any(|e| e.kind == "stage_retrying"));
    let failed = events.iter().find(|e| e.kind == "stage_failed").expect("stage_failed");
    assert_eq!(failed.data.as_ref().map(|d| d["code"].clone()), Some("model_missing".into()), "{failed:?}");

    // The operator fetches the models and re-runs the stage that died.
    let retry = |stage: &str| {
        reqwest::Client::new()
            .post(format!("{}/v1/videos/{id}/stages/{stage}/retry", server.url))
            .bearer_auth(TOKEN)
            .send()
    };
    assert_eq!(retry("encode").await.expect("post").status(), 409, "encode did not die");
    for entry in std::fs::read_dir(repo_models()).expect("models").flatten() {
        std::os::unix::fs::symlink(entry.path(), empty_models.path().join(entry.file_name())).expect("link");
    }
    assert_eq!(retry("transcribe").await.expect("post").status(), 202);
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "the warning went with its cause: {video}");
    let master =
        std::fs::read_to_string(server.data.join(format!("videos/{id}/hls/master.m3u8"))).expect("master");
    assert!(master.contains("SUBTITLES"), "captions published after the retry: {master}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_never_block_the_pipeline() {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};

    // A receiver that refuses its first delivery.
    type Seen = Arc<Mutex<Vec<(u16, HeaderMap, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let app = {
        let seen = Arc::clone(&seen);
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    let mut seen = seen.lock().expect("lock");
                    let status = if seen.is_empty() { 500 } else { 200 };
                    seen.push((status, headers, body.to_vec()));
                    StatusCode::from_u16(status).expect("status")
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook_url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = Server::start(|_, _| {}).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let hooks = vec![babelcast_server::webhooks::Webhook { url: hook_url, secret: "shh".into() }];
    let delivery = tokio::spawn(babelcast_server::webhooks::run(
        server.pipeline.db().clone(),
        hooks,
        Duration::from_millis(200),
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let (status, body) = server.upload("talk.mp4", clip, None, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    server.wait_final(&id).await;
    let started = Instant::now();
    loop {
        let done = seen
            .lock()
            .expect("lock")
            .iter()
            .any(|(s, h, _)| *s == 200 && h["x-babelcast-event"] == "completed");
        if done {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no completed webhook");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = delivery.await;

    let seen = seen.lock().expect("lock").clone();
    let (first_status, first_headers, first_body) = &seen[0];
    assert_eq!(*first_status, 500);
    let (_, retry_headers, retry_body) = &seen[1];
    assert_eq!(retry_body, first_body, "the refused delivery is retried");
    assert_eq!(first_headers["x-babelcast-event"], "received");
    for (_, headers, body) in seen.iter() {
        let timestamp: i64 =
            headers["x-babelcast-timestamp"].to_str().expect("ascii").parse().expect("number");
        let expected = babelcast_server::webhook_signature(b"shh", timestamp, body);
        assert_eq!(headers["x-babelcast-signature"], expected.as_str());
        let event: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(event["video_id"], id.as_str());
        assert_ne!(event["kind"], "progress", "progress ticks are not sent");
    }
    assert!(retry_headers.contains_key("x-babelcast-signature"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_folder_ingests_each_finished_video_once_and_never_its_own_outputs() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    // The data folder sits inside the watched folder: its outputs must not loop.
    let watched = server.data.parent().expect("parent").to_owned();
    let dir = babelcast_server::watch_folder::check(&watched, &server.data).expect("watchable");
    assert!(babelcast_server::watch_folder::check(&server.data, &server.data).is_err());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(babelcast_server::watch_folder::run(
        server.pipeline.clone(),
        dir,
        Duration::from_secs(1),
        babelcast_pipeline::VideoOptions::default(),
        stopped,
    ));

    // A video arriving slowly: half, a pause shorter than the settle time, the rest.
    let arriving = watched.join("arriving.mp4");
    std::fs::write(&arriving, &clip[..clip.len() / 2]).expect("write");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut file = std::fs::OpenOptions::new().append(true).open(&arriving).expect("open");
    file.write_all(&clip[clip.len() / 2..]).expect("append");
    drop(file);
    std::fs::write(watched.join("notes.txt"), "not a video").expect("write");

    let started = Instant::now();
    let id = loop {
        let videos = server.pipeline.db().videos().await.expect("videos");
        if let Some(v) = videos.first() {
            break v.id.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "nothing ingested");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "the whole file was ingested, not half: {video}");
    // A copy of an output beside the data folder's videos is still inside it.
    std::fs::copy(server.data.join(format!("videos/{id}/source.mp4")), server.data.join("videos/loop.mp4"))
        .expect("copy");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let videos = server.pipeline.db().videos().await.expect("videos");
    assert_eq!(videos.len(), 1, "ingested once, outputs never: {videos:?}");
    let _ = stop.send(true);
    let _ = task.await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_edits_and_approves_in_the_browser_and_the_pipeline_continues() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let id = server.upload_for_review(tmp.path()).await;
    // Nothing unreviewed is published, and approving needs the token.
    let master =
        std::fs::read_to_string(server.data.join(format!("videos/{id}/hls/master.m3u8"))).expect("master");
    assert!(!master.contains("SUBTITLES"), "{master}");
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/videos/{id}/approve", server.url))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 401);
    let (status, transcript) = server.get_json(&format!("/v1/videos/{id}/transcript")).await;
    assert_eq!(status, 200);
    assert!(!transcript["cues"].as_array().expect("cues").is_empty(), "{transcript}");

    // The reviewer (an outside translator, say) gets a review link, not a key.
    let link: Value = reqwest::Client::new()
        .post(format!("{}/v1/videos/{id}/links/review", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("link")
        .json()
        .await
        .expect("json");
    let page = format!("{}{}", server.url, link["url"].as_str().expect("url"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/review.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(page)
        .arg("-")
        .arg("Reviewed by a person.")
        .output()
        .await
        .expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = serde_json::to_string_pretty(&page).unwrap_or_default();
    assert_eq!(page["errors"], Value::Array(Vec::new()), "{report}");
    assert!(page["flaggedWhileTyping"].as_str().unwrap_or("").contains("60 characters"), "{report}");
    assert_eq!(page["flagsAfterFix"], "", "{report}");
    assert!(page["saveStatus"].as_str().unwrap_or("").starts_with("saved"), "{report}");
    assert_eq!(page["approveStatus"], "approved", "{report}");
    if let (Some(at), Some(start)) = (page["seekedTo"].as_f64(), page["secondStart"].as_f64()) {
        assert!((at - start).abs() < 0.5, "clicking a cue seeks to it: {report}");
    }

    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    let en = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/en.vtt"))).expect("en");
    assert!(en.contains("Reviewed by a person."), "{en}");
    let master =
        std::fs::read_to_string(server.data.join(format!("videos/{id}/hls/master.m3u8"))).expect("master");
    assert!(master.contains("LANGUAGE=\"en\"") && master.contains("LANGUAGE=\"es\""), "{master}");
    let sse = reqwest::Client::new()
        .get(format!("{}/v1/videos/{id}/events", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sse")
        .text()
        .await
        .expect("text");
    let order: Vec<&str> =
        ["event: awaiting_review", "event: transcript_edited", "event: approved", "event: completed"]
            .into_iter()
            .filter(|k| sse.contains(k))
            .collect();
    assert_eq!(order.len(), 4, "{sse}");
    assert!(sse.find("event: awaiting_review") < sse.find("event: approved"));

    // An edit after approval re-runs only what depends on the cues.
    let response = reqwest::Client::new()
        .put(format!("{}/v1/videos/{id}/transcript", server.url))
        .bearer_auth(TOKEN)
        .header("content-type", "text/vtt")
        .body("WEBVTT\n\n00:00:00.500 --> 00:00:02.500\nThe river is long.\n")
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    let stages: Vec<(String, i64)> = video["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| (s["stage"].as_str().unwrap_or("").to_owned(), s["attempts"].as_i64().unwrap_or(0)))
        .collect();
    assert!(stages.contains(&("encode".into(), 1)), "the video was not encoded again: {stages:?}");
    let es = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/es.vtt"))).expect("es");
    assert!(es.contains("río"), "translated again: {es}");
    server.stop().await;
}

/// A models folder with the repository's models and, under `translation/`, the
/// tiny word-for-word English→Spanish CTranslate2 model that babelcast-translate's
/// tests build (`tiny_ct2_model.py`).
fn models_with_translation(root: &Path) -> PathBuf {
    let models = root.join("models");
    std::fs::create_dir_all(models.join("translation/opus-mt-en-es")).expect("mkdir");
    for entry in std::fs::read_dir(repo_models()).expect("models").flatten() {
        std::os::unix::fs::symlink(entry.path(), models.join(entry.file_name())).expect("link");
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let python = Path::new(&home).join(".cache/babelcast/venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../translate/tests/fixtures/tiny_ct2_model.py");
    let out = Command::new(python)
        .arg(script)
        .arg(models.join("translation/opus-mt-en-es"))
        .output()
        .expect("python (scripts/test-fixtures.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    models
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ctranslate2_model_in_the_models_folder_translates_the_reviewed_captions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let models = models_with_translation(tmp.path());
    let server = Server::start(move |p, _| p.models_dir = models).await;
    let id = server.upload_for_review(tmp.path()).await;
    // The reviewer's words are all in the tiny model's dictionary.
    let client = reqwest::Client::new();
    let vtt = "WEBVTT\n\n00:00:00.500 --> 00:00:02.500\nthe cat sleeps\n\n\
               00:00:02.600 --> 00:00:04.500\nin the garden.\n";
    let put = client
        .put(format!("{}/v1/videos/{id}/transcript", server.url))
        .bearer_auth(TOKEN)
        .header("content-type", "text/vtt")
        .body(vtt)
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let approve = client
        .post(format!("{}/v1/videos/{id}/approve", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("post");
    assert_eq!(approve.status(), 200);
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    let es = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/es.vtt"))).expect("es");
    assert!(es.contains("el gato duerme\n") && es.contains("en el jardín."), "{es}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    assert!(
        events.iter().any(|e| e.data.as_ref().is_some_and(|d| d["engine"] == "ctranslate2 opus-mt-en-es")),
        "{events:?}"
    );
    server.stop().await;
}

/// Every file under `dir` with its modification time.
fn mtimes(dir: &Path) -> std::collections::BTreeMap<PathBuf, std::time::SystemTime> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .collect()
}

/// The data of the last `stage_finished` event of `stage` after event `after`.
fn finished_after(events: &[babelcast_jobs::Event], stage: &str, after: i64) -> Option<Value> {
    events
        .iter()
        .rev()
        .find(|e| e.id > after && e.kind == "stage_finished" && e.stage.as_deref() == Some(stage))
        .and_then(|e| e.data.clone())
}

fn cue_texts(vtt: &str) -> Vec<String> {
    babelcast_core::subtitle::vtt::read(vtt).expect("vtt").into_iter().map(|c| c.text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_one_cue_translates_and_voices_only_what_changed_and_a_reupload_reuses_everything() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    // Three recordings: several sentences, so one edit leaves most of them alone.
    let clip = tmp.path().join("talk.mp4");
    let librivox = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb";
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-i",
        &format!("{librivox}-0870.wav"),
        "-i",
        &format!("{librivox}-0880.wav"),
        "-i",
        &format!("{librivox}-0890.wav"),
        "-filter_complex",
        "[1:a][2:a][3:a]concat=n=3:v=0:a=1[speech]",
        "-map",
        "0:v",
        "-map",
        "[speech]",
        "-shortest",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        clip.to_str().expect("utf-8"),
    ]);
    let clip = std::fs::read(&clip).expect("clip");
    let options = r#"{"language":"en","to":["es","it"]}"#;
    let (status, body) = server.upload("talk.mp4", clip.clone(), Some(options), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert!(video["state"].as_str().unwrap_or("").starts_with("completed"), "{video}");
    let captions = |lang: &str| {
        std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/{lang}.vtt"))).expect("vtt")
    };
    let before = [("es", cue_texts(&captions("es"))), ("it", cue_texts(&captions("it")))];
    let clips = server.data.join("cache/voice");
    let clips_before = mtimes(&clips);
    assert!(!clips_before.is_empty(), "the dubs' clips are kept");

    // One cue's text changes.
    let (_, transcript) = server.get_json(&format!("/v1/videos/{id}/transcript")).await;
    let mut cues = transcript["cues"].as_array().expect("cues").clone();
    assert!(cues.len() >= 4, "{transcript}");
    let last = cues.len() - 1;
    cues[last]["text"] = "The river is long.".into();
    let put = reqwest::Client::new()
        .put(format!("{}/v1/videos/{id}/transcript", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "cues": cues }))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let video = server.wait_final(&id).await;
    assert!(video["state"].as_str().unwrap_or("").starts_with("completed"), "{video}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    let edited = events.iter().find(|e| e.kind == "transcript_edited").expect("edited").id;
    for (lang, old) in &before {
        let new = cue_texts(&captions(lang));
        // Cues whose text is new: the only ones with nothing to reuse.
        let changed = new.iter().filter(|t| !old.contains(t)).count();
        assert!(changed >= 1 && changed < new.len(), "{lang}: {old:?} → {new:?}");
        let translate =
            finished_after(&events, &format!("translate-{lang}"), edited).expect("translated again");
        let (sentences, translated) = (
            translate["reuse"]["sentences"].as_u64().unwrap_or(0),
            translate["reuse"]["translated"].as_u64(),
        );
        assert!(
            translated.is_some_and(|n| (1..=2).contains(&n) && n < sentences),
            "{lang}: only the sentences the edit touched: {translate}"
        );
        let dub = finished_after(&events, &format!("dub-{lang}"), edited).expect("dubbed again");
        let voiced = dub["reuse"]["voiced"].as_u64().unwrap_or(u64::MAX) as usize;
        // A cue spoken too long is spoken once more, faster.
        assert!((changed..=2 * changed).contains(&voiced), "{lang}: {changed} cues changed, {dub}");
        // A few cues re-voiced keep the level of the mix before the edit.
        let clips_asked = dub["reuse"]["clips"].as_u64().unwrap_or(0) as usize;
        let level = if voiced * 5 <= clips_asked { "kept" } else { "measured" };
        assert_eq!(dub["reuse"]["level"].as_str(), Some(level), "{lang}: {dub}");
        // And with the level kept, only the end of the 15.4 s track around the
        // last cue is mixed again and spliced in; a measured level mixes it all.
        let remixed = dub["reuse"]["remixed_secs"].as_f64().unwrap_or(f64::NAN);
        let expected = if level == "kept" { 2.0..10.0 } else { 15.0..16.0 };
        assert!(expected.contains(&remixed), "{lang}: {remixed} s mixed again, {dub}");
    }
    let clips_after = mtimes(&clips);
    for (path, at) in &clips_before {
        assert_eq!(
            clips_after.get(path),
            Some(at),
            "an unchanged cue's clip was not written again: {path:?}"
        );
    }
    let stages: Vec<(String, i64)> = video["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| (s["stage"].as_str().unwrap_or("").to_owned(), s["attempts"].as_i64().unwrap_or(0)))
        .collect();
    assert!(stages.contains(&("encode".into(), 1)), "not encoded again: {stages:?}");

    // The package plays in chromium with the edit's Spanish text at its time.
    let es_cues = babelcast_core::subtitle::vtt::read(&captions("es")).expect("vtt");
    let new_cue = es_cues.iter().find(|c| !before[0].1.contains(&c.text)).expect("a new es cue").clone();
    let at = format!("{:.3}", new_cue.start.0 as f64 / 1000.0);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/check-hls.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(server.data.join(format!("videos/{id}/hls")))
        .arg("master.m3u8")
        .args(["--cue-at", &at, "--cue-lang", "es", "--cue-tolerance", "0.1"])
        .output()
        .await
        .expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = serde_json::to_string_pretty(&seen["cueTiming"]).unwrap_or_default();
    let shown = seen["cueTiming"]["shownAt"].as_f64().unwrap_or_else(|| panic!("not shown: {report}"));
    assert!((shown - new_cue.start.0 as f64 / 1000.0).abs() <= 0.1, "{report}");
    assert_eq!(seen["cueTiming"]["text"].as_str(), Some(new_cue.text.as_str()), "{report}");
    // The download has the edit too: its Spanish caption track says the new text.
    let mp4 = server.data.join(format!("videos/{id}/mp4/es.mp4"));
    let srt = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&mp4)
        .args(["-map", "0:s:0", "-f", "srt", "pipe:1"])
        .output()
        .await
        .expect("ffmpeg");
    let srt = String::from_utf8_lossy(&srt.stdout);
    assert!(
        new_cue.text.lines().all(|l| srt.contains(l.trim())),
        "{:?} not in the MP4's {srt}",
        new_cue.text
    );

    // A translator fixes one Spanish cue: only the Spanish dub runs again, and
    // only that cue is spoken.
    let (status, es) = server.get_json(&format!("/v1/videos/{id}/translations/es")).await;
    assert_eq!(status, 200, "{es}");
    assert_eq!(es["source"].as_array().map(Vec::len), Some(cues.len()), "the source beside it: {es}");
    let mut es_edit = es["cues"].as_array().expect("cues").clone();
    es_edit[0]["text"] = "El río es muy largo.".into();
    let clips_before = mtimes(&clips);
    let put = reqwest::Client::new()
        .put(format!("{}/v1/videos/{id}/translations/es", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "cues": es_edit }))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let video = server.wait_final(&id).await;
    assert!(video["state"].as_str().unwrap_or("").starts_with("completed"), "{video}");
    assert!(captions("es").contains("El río es muy largo."));
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    let fixed = events.iter().find(|e| e.kind == "translation_edited").expect("edited").id;
    let dub = finished_after(&events, "dub-es", fixed).expect("es dubbed again");
    let voiced = dub["reuse"]["voiced"].as_u64().unwrap_or(u64::MAX);
    assert!((1..=2).contains(&voiced), "only the fixed cue is spoken: {dub}");
    for other in ["translate-es", "translate-it", "dub-it"] {
        assert!(finished_after(&events, other, fixed).is_none(), "{other} ran again after the es edit");
    }
    let clips_now = mtimes(&clips);
    assert!(clips_before.iter().all(|(path, at)| clips_now.get(path) == Some(at)), "old clips untouched");
    let (_, status) = server.get_json(&format!("/v1/videos/{id}")).await;
    let es_status = status["translations"]
        .as_array()
        .expect("translations")
        .iter()
        .find(|t| t["language"] == "es")
        .cloned();
    assert_eq!(es_status.map(|t| t["edited"].clone()), Some(Value::Bool(true)), "{status}");

    // The same upload again, same targets: every stage from its cache.
    let clips_before_reupload = mtimes(&clips).len();
    let (status, body) = server.upload("talk.mp4", clip, Some(options), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let again = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&again).await;
    assert!(video["state"].as_str().unwrap_or("").starts_with("completed"), "{video}");
    let events = server.pipeline.db().events(&again, 0).await.expect("events");
    for stage in ["transcribe", "translate-es", "translate-it", "dub-es", "dub-it"] {
        let done = finished_after(&events, stage, 0).expect("finished");
        assert_eq!(done["cached"], true, "{stage}: {done}");
    }
    assert_eq!(mtimes(&clips).len(), clips_before_reupload, "nothing spoken");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_review_translations_the_dub_waits_for_the_translations_approval() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let options = r#"{"language":"en","review_translations":true,"to":["es"]}"#;
    let (status, body) = server.upload("talk.mp4", clip, Some(options), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    let video = loop {
        let video = server.wait_final(&id).await;
        let stages = video["stages"].as_array().cloned().unwrap_or_default();
        let idle = stages.iter().all(|s| s["state"] == "done" || s["state"] == "dead");
        if video["state"] != "awaiting_review" || idle {
            break video;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{video}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(video["state"], "awaiting_review", "{video}");
    let stages: Vec<&str> =
        video["stages"].as_array().expect("stages").iter().filter_map(|s| s["stage"].as_str()).collect();
    assert!(stages.contains(&"translate-es") && !stages.contains(&"dub-es"), "{stages:?}");
    let master =
        || std::fs::read_to_string(server.data.join(format!("videos/{id}/hls/master.m3u8"))).expect("master");
    assert!(master().contains("LANGUAGE=\"en\""), "the reviewed source's captions are out: {}", master());
    assert!(!master().contains("LANGUAGE=\"es\""), "no unreviewed translation is published: {}", master());
    let (status, es) = server.get_json(&format!("/v1/videos/{id}/translations/es")).await;
    assert_eq!(status, 200, "{es}");
    assert!(!es["cues"].as_array().expect("cues").is_empty(), "{es}");
    let (status, _) = server.get_json(&format!("/v1/videos/{id}/translations/it")).await;
    assert_eq!(status, 409, "not a target of this video");

    let approved = reqwest::Client::new()
        .post(format!("{}/v1/videos/{id}/approve", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("post");
    assert_eq!(approved.status(), 200);
    assert_eq!(approved.json::<Value>().await.expect("json")["approved"], "translations");
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    let master = master();
    assert!(master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"es\""), "{master}");
    assert!(master.contains("TYPE=AUDIO") && master.matches("LANGUAGE=\"es\"").count() == 2, "{master}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    let waited = events.iter().find(|e| e.kind == "awaiting_review").expect("waited");
    assert_eq!(waited.data.as_ref().map(|d| d["review"].clone()), Some(Value::from("translations")));

    // Every output is listed as a download; the MP4 comes in ranges, named after
    // the upload, and ffprobe reads it back.
    let paths: Vec<&str> =
        video["downloads"].as_array().expect("downloads").iter().filter_map(|d| d["path"].as_str()).collect();
    for want in ["transcript.json", "mp4/es.mp4", "dub/es.m4a", "captions/es.vtt", "captions/en.srt"] {
        assert!(paths.contains(&want), "{want} in {paths:?}");
    }
    let url = format!("{}/v1/videos/{id}/files/mp4/es.mp4", server.url);
    let client = reqwest::Client::new();
    let part = client.get(&url).bearer_auth(TOKEN).header("range", "bytes=0-99").send().await.expect("get");
    assert_eq!(part.status(), 206);
    assert!(part.headers()["content-range"].to_str().unwrap_or("").starts_with("bytes 0-99/"));
    assert_eq!(part.bytes().await.expect("bytes").len(), 100);
    let whole = client.get(&url).bearer_auth(TOKEN).send().await.expect("get");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    assert_eq!(whole.headers()["content-disposition"], "attachment; filename=\"talk.es.mp4\"");
    let saved = tmp.path().join("download.mp4");
    std::fs::write(&saved, whole.bytes().await.expect("bytes")).expect("write");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .arg(&saved)
        .output()
        .expect("ffprobe");
    assert!(String::from_utf8_lossy(&probe.stdout).contains("video"), "{probe:?}");
    let outside = client.get(format!("{}/v1/videos/{id}/files/source.mp4", server.url)).bearer_auth(TOKEN);
    assert_eq!(outside.send().await.expect("get").status(), 404, "only outputs are downloads");
    server.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_on_an_allowed_site_plays_the_signed_stream_and_one_on_another_site_cannot() {
    let (allowed, other) = (free_port(), free_port());
    let server =
        Server::start(move |_, s| s.cors_origins = vec![format!("http://127.0.0.1:{allowed}")]).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let (status, body) = server.upload("talk.mp4", clip, Some(r#"{"language":"en"}"#), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    assert!(server.wait_final(&id).await["state"].as_str().unwrap_or("").starts_with("completed"));
    let (_, playback) = server.get_json(&format!("/v1/videos/{id}/playback")).await;
    let master = format!("{}{}", server.url, playback["url"].as_str().expect("url"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/cross-origin.mjs");
    let play = |port: u16| {
        let out = Command::new("node")
            .arg(&script)
            .arg(&server.url)
            .arg(&master)
            .arg(port.to_string())
            .output()
            .expect("node");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("json")
    };
    let seen = play(allowed);
    assert_eq!(
        (&seen["manifestParsed"], &seen["fragLoaded"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{seen}"
    );
    let seen = play(other);
    assert_eq!(seen["manifestParsed"], false, "not an allowed origin: {seen}");
    assert!(seen["error"].as_str().is_some_and(|e| e.contains("manifestLoadError")), "{seen}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_video_stops_and_stays_stopped_with_what_it_made() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let (status, body) =
        server.upload("talk.mp4", clip, Some(r#"{"language":"en","to":["es"]}"#), Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let cancel = || {
        reqwest::Client::new().post(format!("{}/v1/videos/{id}/cancel", server.url)).bearer_auth(TOKEN).send()
    };
    assert_eq!(cancel().await.expect("post").status(), 200);
    let (_, video) = server.get_json(&format!("/v1/videos/{id}")).await;
    assert_eq!(video["state"], "cancelled", "{video}");
    // Long enough for any stage that was running to end: nothing starts, nothing
    // is recorded as done after the cancel.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (_, video) = server.get_json(&format!("/v1/videos/{id}")).await;
    assert_eq!(video["state"], "cancelled", "{video}");
    let stages = video["stages"].as_array().expect("stages");
    assert!(stages.iter().all(|s| s["stage"] != "translate-es" && s["stage"] != "dub-es"), "{video}");
    assert!(stages.iter().any(|s| s["error"] == "cancelled"), "{video}");
    assert_eq!(cancel().await.expect("post").status(), 409, "cancelled already");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    assert_eq!(events.iter().filter(|e| e.kind == "cancelled").count(), 1);
    server.stop().await;
}
