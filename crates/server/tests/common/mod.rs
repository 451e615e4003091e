//! The harness the server's integration tests share: the real server in-process
//! on port 0 with real ffmpeg and Whisper, and a speech clip to upload.
#![allow(dead_code, unused_imports)]

pub use std::io::{Read, Write};
pub use std::path::{Path, PathBuf};
pub use std::process::Command;
pub use std::time::{Duration, Instant};

pub use babelcast_jobs::Db;
pub use babelcast_media::LadderConfig;
pub use babelcast_media::ladder::Rung;
pub use babelcast_pipeline::{ALL_STAGES, Pipeline, PipelineConfig, SpeechConfig, WorkerPool};
pub use babelcast_process::Program;
pub use babelcast_server::{ServerConfig, Signer};
pub use serde_json::Value;

pub const SPEECH_WAV: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";
pub const TOKEN: &str = "test-token";
pub const KEY: &[u8] = b"test-signing-key";

pub fn repo_models() -> PathBuf {
    babelcast_models::default_dir()
}

pub fn ffmpeg(args: &[&str]) {
    let out =
        Command::new("ffmpeg").args(["-v", "error", "-y", "-nostdin"]).args(args).output().expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A small video whose sound is a person reading.
pub fn speech_clip(dir: &Path) -> PathBuf {
    let path = dir.join("talk.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-i",
        SPEECH_WAV,
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

pub struct Server {
    pub url: String,
    pub data: PathBuf,
    pub pipeline: Pipeline,
    _tmp: tempfile::TempDir,
    pool: Option<WorkerPool>,
}

impl Server {
    pub async fn start(tweak: impl FnOnce(&mut PipelineConfig, &mut ServerConfig)) -> Server {
        Server::start_with_workers(2, tweak).await
    }

    /// The server with `workers` worker tasks (one: stages run one after another).
    pub async fn start_with_workers(
        workers: usize,
        tweak: impl FnOnce(&mut PipelineConfig, &mut ServerConfig),
    ) -> Server {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        let mut config = PipelineConfig {
            data_dir: data.clone(),
            models_dir: repo_models(),
            ffmpeg: Program::ffmpeg(),
            ffprobe: Program::ffprobe(),
            probe_timeout: Duration::from_secs(60),
            speech: SpeechConfig {
                model: "whisper-tiny.en".into(),
                beam_size: 1,
                threads: 2,
                ..SpeechConfig::default()
            },
            ladder: LadderConfig {
                rungs: vec![Rung { height: 240, bitrate_kbps: 300, max_kbps: 400 }],
                preset: "ultrafast".into(),
                segment_secs: 2,
                audio_kbps: 64,
                ..LadderConfig::default()
            },
            lease: Duration::from_secs(10),
            max_attempts: 2,
            backoff: Duration::from_millis(100),
            apertium: Program::apertium(),
            espeak: Program::espeak_ng(),
            s3: None,
            keep_source: true,
        };
        let mut server = ServerConfig {
            max_upload_bytes: 50 << 20,
            playback_ttl: Duration::from_secs(600),
            ..ServerConfig::new(TOKEN.into(), Signer::new(KEY.to_vec()))
        };
        tweak(&mut config, &mut server);
        std::fs::create_dir_all(&data).expect("data");
        let db = Db::open(&data.join("babelcast.db")).await.expect("db");
        let pipeline = Pipeline::new(db, config).expect("pipeline");
        let pool = WorkerPool::start(&pipeline, workers, ALL_STAGES, "test");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = babelcast_server::router(pipeline.clone(), server);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { url, data, pipeline, _tmp: tmp, pool: Some(pool) }
    }

    pub async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        options: Option<&str>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        if let Some(options) = options {
            form = form.text("options", options.to_owned());
        }
        form = form.part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
        let mut request = reqwest::Client::new().post(format!("{}/v1/videos", self.url)).multipart(form);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn wait_final(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, video) = self.get_json(&format!("/v1/videos/{id}")).await;
            assert_eq!(status, 200, "{video}");
            if video["state"] != "processing" {
                return video;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "still processing: {video}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Uploads the speech clip for review into Spanish and waits until it awaits
    /// review with its package encoded; returns its id.
    pub async fn upload_for_review(&self, dir: &Path) -> String {
        let clip = std::fs::read(speech_clip(dir)).expect("clip");
        let options = r#"{"language":"en","review":true,"to":["es"]}"#;
        let (status, body) = self.upload("talk.mp4", clip, Some(options), Some(TOKEN)).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        let started = Instant::now();
        loop {
            let (_, video) = self.get_json(&format!("/v1/videos/{id}")).await;
            if video["state"] == "awaiting_review" && video["outputs"]["master"].is_string() {
                return id;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "{video}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(pool) = self.pool.take() {
            pool.shutdown().await;
        }
    }
}

/// Every file of the package fetched through the signed URL, as a player would.
pub async fn fetch_package(base: &str, master_url: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let master = client.get(format!("{base}{master_url}")).send().await.expect("master");
    assert_eq!(master.status(), 200);
    let text = master.text().await.expect("text");
    let dir = master_url.rsplit_once('/').expect("a path").0.to_owned();
    let mut fetched = vec!["master.m3u8".to_owned()];
    let uris: Vec<String> = text
        .lines()
        .filter_map(|l| {
            if let Some(i) = l.find("URI=\"") {
                Some(l[i + 5..].split('"').next().unwrap_or_default().to_owned())
            } else if !l.starts_with('#') && !l.trim().is_empty() {
                Some(l.trim().to_owned())
            } else {
                None
            }
        })
        .collect();
    for uri in uris {
        let playlist = client.get(format!("{base}{dir}/{uri}")).send().await.expect("playlist");
        assert_eq!(playlist.status(), 200, "{uri}");
        let body = playlist.text().await.expect("text");
        let sub = uri.rsplit_once('/').map(|(d, _)| d.to_owned()).unwrap_or_default();
        for segment in body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let response = client.get(format!("{base}{dir}/{sub}/{segment}")).send().await.expect("segment");
            assert_eq!(response.status(), 200, "{sub}/{segment}");
            fetched.push(format!("{sub}/{segment}"));
        }
        fetched.push(uri);
    }
    fetched
}
