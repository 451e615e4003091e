//! Subtitles brought by the user: an upload with a `transcript` part is
//! captioned, translated and dubbed from it, with no speech recognition (the
//! server here has no Whisper model at all); a file that cannot be read is
//! refused at upload with what is wrong in it.

mod common;
use common::*;

/// An SRT as an older Windows tool writes it: Windows-1252, CRLF.
fn windows_1252_srt() -> Vec<u8> {
    let text = "1\r\n00:00:00,400 --> 00:00:02,400\r\nThe caf\u{e9} was open.\r\n\r\n\
                2\r\n00:00:02,700 --> 00:00:04,600\r\nMr. M\u{fc}ller said hello to the children.\r\n";
    // Every character of the text is in Latin-1, which Windows-1252 extends.
    text.chars().map(|c| u8::try_from(u32::from(c)).expect("latin-1")).collect()
}

async fn upload_with_transcript(
    server: &Server,
    clip: Vec<u8>,
    options: &str,
    transcript: Vec<u8>,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("options", options.to_owned())
        .part("transcript", reqwest::multipart::Part::bytes(transcript).file_name("talk.srt"))
        .part("file", reqwest::multipart::Part::bytes(clip).file_name("talk.mp4"));
    post_form(server, form).await
}

/// Posts an upload form with the admin token.
async fn post_form(server: &Server, form: reqwest::multipart::Form) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/videos", server.url))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_subtitles_are_the_transcript_translated_and_dubbed_without_speech_recognition() {
    // No models: a transcription would die for want of Whisper.
    let no_models = tempfile::tempdir().expect("tmp");
    let models = no_models.path().to_owned();
    let server = Server::start(move |p, _| p.models_dir = models).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let options = r#"{"language":"en","to":["es"],"glossary":{"keep":["Müller"]}}"#;
    let (status, body) = upload_with_transcript(&server, clip, options, windows_1252_srt()).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");

    let stages: Vec<&str> =
        video["stages"].as_array().expect("stages").iter().filter_map(|s| s["stage"].as_str()).collect();
    assert!(stages.contains(&"import") && !stages.contains(&"transcribe"), "{stages:?}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    assert!(!events.iter().any(|e| e.stage.as_deref() == Some("transcribe")), "speech recognition never ran");
    let imported = events
        .iter()
        .find(|e| e.kind == "stage_finished" && e.stage.as_deref() == Some("import"))
        .and_then(|e| e.data.clone())
        .expect("import finished");
    assert!(imported["source"].as_str().expect("source").contains("windows-1252"), "{imported}");

    let (status, transcript) = server.get_json(&format!("/v1/videos/{id}/transcript")).await;
    assert_eq!(status, 200, "{transcript}");
    let texts: Vec<&str> =
        transcript["cues"].as_array().expect("cues").iter().filter_map(|c| c["text"].as_str()).collect();
    assert_eq!(texts, ["The caf\u{e9} was open.", "Mr. M\u{fc}ller said hello to the children."]);
    assert_eq!(transcript["cues"][1]["start_ms"], 2_700, "the given times are kept: {transcript}");

    let spanish = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/es.vtt")))
        .expect("es captions");
    assert!(spanish.contains("M\u{fc}ller"), "the kept name, read in its encoding: {spanish}");
    assert!(spanish.contains("00:00:02.700 -->"), "{spanish}");
    let master =
        std::fs::read_to_string(server.data.join(format!("videos/{id}/hls/master.m3u8"))).expect("master");
    assert!(master.contains("LANGUAGE=\"en\"") && master.contains("LANGUAGE=\"es\""), "{master}");
    assert!(server.data.join(format!("videos/{id}/mp4/es.mp4")).is_file(), "the es dub's MP4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_that_cannot_be_read_is_refused_at_upload_and_nothing_is_kept() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let cases: [(&str, &[u8], &str, &str); 4] = [
        (
            r#"{"language":"en"}"#,
            b"1\n00:00:01,000 --> 00:00:0X,000\nhi\n",
            "subtitle_bad_timestamp",
            "line 2",
        ),
        (r#"{"language":"en"}"#, b"", "subtitle_empty", "no cues"),
        (r#"{"language":"en"}"#, b"\x00\x01\x02binary\xff\x00", "subtitle_not_text", "not a subtitle file"),
        (r#"{"language":"auto"}"#, b"1\n00:00:01,000 --> 00:00:02,000\nhi\n", "invalid_options", "language"),
    ];
    for (options, transcript, code, says) in cases {
        let (status, body) =
            upload_with_transcript(&server, clip.clone(), options, transcript.to_vec()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{body}");
        assert!(body["error"]["message"].as_str().expect("message").contains(says), "{body}");
    }
    let (status, list) = server.get_json("/v1/videos").await;
    assert_eq!(status, 200, "the server keeps serving");
    assert_eq!(list["videos"].as_array().map(Vec::len), Some(0), "nothing was kept: {list}");
    let leftovers = std::fs::read_dir(server.data.join("uploads")).expect("uploads").count();
    assert_eq!(leftovers, 0, "no staged upload is left behind");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mkv_with_its_own_subrip_track_is_localized_from_it_without_speech_recognition() {
    let no_models = tempfile::tempdir().expect("tmp");
    let models = no_models.path().to_owned();
    let server = Server::start(move |p, _| p.models_dir = models).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = speech_clip(tmp.path());
    let srt = tmp.path().join("subs.srt");
    std::fs::write(&srt, "1\n00:00:00,400 --> 00:00:02,400\nThe garden was open.\n\n2\n00:00:02,700 --> 00:00:04,600\nHe said hello to the children.\n").expect("srt");
    let mkv = tmp.path().join("talk.mkv");
    ffmpeg(&[
        "-i",
        clip.to_str().expect("utf-8"),
        "-i",
        srt.to_str().expect("utf-8"),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-c:s",
        "srt",
        "-metadata:s:s:0",
        "language=eng",
        mkv.to_str().expect("utf-8"),
    ]);
    let (status, body) = server
        .upload(
            "talk.mkv",
            std::fs::read(&mkv).expect("mkv"),
            Some(r#"{"to":["es"],"transcript_from":"embedded"}"#),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    assert!(!events.iter().any(|e| e.stage.as_deref() == Some("transcribe")), "no speech recognition");
    let imported = events
        .iter()
        .find(|e| e.kind == "stage_finished" && e.stage.as_deref() == Some("import"))
        .and_then(|e| e.data.clone())
        .expect("import finished");
    assert!(
        imported["source"].as_str().expect("source").starts_with("subtitle stream 2 (subrip)"),
        "{imported}"
    );
    let en = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/en.vtt"))).expect("en");
    assert!(en.contains("The garden was open."), "{en}");
    let es = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/es.vtt"))).expect("es");
    // At the track's time: the remux into MKV may shift every stream alike by a
    // frame or two (ffmpeg keeps timestamps non-negative).
    let cues = babelcast_core::subtitle::vtt::read(&es).expect("vtt");
    assert!(cues.len() == 2 && cues[1].start.0.abs_diff(2_700) <= 100 && !es.contains("garden"), "{es}");

    // A video without a subtitle stream is refused at upload, saying so.
    let (status, body) = server
        .upload(
            "talk.mp4",
            std::fs::read(&clip).expect("mp4"),
            Some(r#"{"transcript_from":"embedded"}"#),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("it has none"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_translation_is_the_track_and_the_dub_even_where_no_engine_reaches() {
    let server = Server::start(|_, _| {}).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = std::fs::read(speech_clip(tmp.path())).expect("clip");
    let srt = "1\n00:00:00,400 --> 00:00:02,400\nThe garden was open.\n\n2\n00:00:02,700 --> 00:00:04,600\nHe said hello.\n";
    let german = "1\n00:00:00,400 --> 00:00:02,400\nDer Garten war offen.\n\n2\n00:00:02,700 --> 00:00:04,600\nEr sagte Hallo.\n";
    // No installed engine translates English to German: refused without the file.
    let (status, body) =
        upload_with_transcript(&server, clip.clone(), r#"{"language":"en","to":["de"]}"#, srt.into()).await;
    assert_eq!(status, 400, "{body}");
    let form = reqwest::multipart::Form::new()
        .text("options", r#"{"language":"en","to":["de"]}"#)
        .part("transcript", reqwest::multipart::Part::bytes(srt.as_bytes().to_vec()).file_name("talk.srt"))
        .part(
            "translation-de",
            reqwest::multipart::Part::bytes(german.as_bytes().to_vec()).file_name("talk.de.srt"),
        )
        .part("file", reqwest::multipart::Part::bytes(clip).file_name("talk.mp4"));
    let (status, body) = post_form(&server, form).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let video = server.wait_final(&id).await;
    assert_eq!(video["state"], "completed", "{video}");
    let de = std::fs::read_to_string(server.data.join(format!("videos/{id}/captions/de.vtt"))).expect("de");
    assert!(de.contains("Der Garten war offen.") && de.contains("Er sagte Hallo."), "{de}");
    let events = server.pipeline.db().events(&id, 0).await.expect("events");
    let translated = events
        .iter()
        .find(|e| e.kind == "stage_finished" && e.stage.as_deref() == Some("translate-de"))
        .and_then(|e| e.data.clone())
        .expect("translate-de finished");
    assert!(translated["engine"].as_str().expect("engine").starts_with("given: talk.de.srt"), "{translated}");
    assert!(server.data.join(format!("videos/{id}/mp4/de.mp4")).is_file(), "dubbed in German");
    server.stop().await;
}
