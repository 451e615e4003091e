//! One job end to end on machines that share nothing but PostgreSQL and an
//! S3-compatible bucket (both real, on loopback: `scripts/test-services.sh` starts
//! PostgreSQL and s3s-fs). An API-only node and two `babelcast worker` processes
//! each get their own data folder, so every byte one of them needs from another
//! must travel through the bucket. The video is captioned, translated and dubbed;
//! the package is edited by different workers under the database's lock; the
//! bucket holds the local store's layout; playback goes through the API node with
//! segments redirected to presigned URLs of the store.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use babelcast_store::remote::{Remote, S3Config};
use common::{PG, curl, psql, repo_models, start, talk_clip};

const S3: &str = "endpoint = \"http://127.0.0.1:39000\"\nbucket = \"babelcast-test\"\nregion = \"garage\"\n\
    access_key_id = \"GK0123456789abcdef01234567\"\n\
    secret_access_key = \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n\
    path_style = true\npresigned_playback = true\n";

/// Files below `dir` whose names end with one of `endings`.
fn files_ending(dir: &Path, endings: &[&str], found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_ending(&path, endings, found);
        } else if endings.iter().any(|e| path.to_string_lossy().ends_with(e)) {
            found.push(path.display().to_string());
        }
    }
}

struct Stop(Vec<Child>);

impl Drop for Stop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_video_is_localized_by_nodes_that_share_only_postgresql_and_a_bucket() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let database = format!("s3_{}", std::process::id());
    psql("postgres", &format!("DROP DATABASE IF EXISTS {database}"));
    psql("postgres", &format!("CREATE DATABASE {database}"));
    let models = std::path::absolute(repo_models()).expect("models");
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n\
             [speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\nthreads = 1\n\
             [server]\ntoken = \"secret\"\nsigning_key = \"shared-by-all-api-nodes\"\nlease_secs = 10\nretry_backoff_secs = 1\n\
             database_url = \"{PG}/{database}\"\n\
             [media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 350\n\
             [s3]\n{S3}"
        ),
    )
    .expect("config");
    let clip = dir.join("talk.mp4");
    let clip_str = clip.to_str().expect("utf-8");
    talk_clip(&clip, 0);

    let (api, rest) = start(
        dir,
        &["serve", "--no-workers", "--listen", "127.0.0.1:0", "--data-dir", "api"],
        "babelcast is serving on ",
    );
    assert!(rest.contains("media: s3 bucket babelcast-test at http://127.0.0.1:39000"), "{rest}");
    let url = rest.split_whitespace().next().expect("url").to_owned();
    let mut nodes = Stop(vec![api]);
    // Two workers, each on its own folder: the speech worker takes nothing else.
    for (data, stages) in
        [("speech-node", "transcribe"), ("media-node", "probe,encode,captions,translate,dub")]
    {
        let (child, _) = start(
            dir,
            &["worker", "--data-dir", data, "--workers", "2", "--stages", stages, "--name", data],
            "babelcast worker",
        );
        nodes.0.push(child);
    }

    let accepted = curl(&[
        "-H",
        "Authorization: Bearer secret",
        "-F",
        &format!("file=@{clip_str}"),
        "-F",
        "options={\"language\":\"en\",\"to\":[\"es\"]}",
        &format!("{url}/v1/videos"),
    ]);
    let id = accepted["id"].as_str().unwrap_or_else(|| panic!("accepted: {accepted}")).to_owned();
    let started = Instant::now();
    let status = loop {
        let status = curl(&["-H", "Authorization: Bearer secret", &format!("{url}/v1/videos/{id}")]);
        if ["completed", "completed_with_warnings", "failed"]
            .contains(&status["state"].as_str().unwrap_or_default())
        {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "not done: {status}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["warnings"], serde_json::json!([]), "{status}");
    let outputs = &status["outputs"];
    assert_eq!(outputs["master"], format!("videos/{id}/hls/master.m3u8"), "{status}");
    for caption in ["en.vtt", "es.vtt"] {
        let want = format!("videos/{id}/captions/{caption}");
        assert!(outputs["captions"].as_array().expect("list").iter().any(|c| c == &want), "{want}: {status}");
    }

    // Each stage ran where it was sent, so the transcript made on the speech node
    // reached the media node only through the bucket.
    let ran = psql(&database, "SELECT stage || ' ' || worker || ' ' || attempts FROM jobs ORDER BY stage");
    for line in ran.lines() {
        let [stage, worker, attempts] = line.split(' ').collect::<Vec<_>>()[..] else { panic!("{line}") };
        let want = if stage == "transcribe" { "speech-node-" } else { "media-node-" };
        assert!(worker.starts_with(want), "{stage} ran on {worker}: {ran}");
        // Once: a stage never starts before its inputs are in the bucket.
        assert_eq!(attempts, "1", "{ran}");
    }
    assert!(ran.contains("dub-es ") && ran.contains("translate-es "), "{ran}");

    // The bucket holds the local store's layout.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config: S3Config = toml::from_str(S3).expect("s3 config");
    let remote = Remote::s3(&config, dir).expect("remote");
    let keys = runtime.block_on(remote.list(&format!("videos/{id}"))).expect("list");
    for want in [
        "source.mp4",
        "facts.json",
        "transcript.json",
        "captions/en.vtt",
        "captions/es.vtt",
        "dub/es.m4a",
        "mp4/es.mp4",
        "hls/master.m3u8",
        "hls/package.json",
    ] {
        assert!(keys.iter().any(|k| k == want), "{want} not in the bucket: {keys:?}");
    }
    assert!(!keys.iter().any(|k| k.split('/').any(|p| p.starts_with('.'))), "no staging or locks: {keys:?}");
    // The speech node never needed the package; the API node never held media.
    let mut media = Vec::new();
    files_ending(&dir.join("speech-node"), &[".m4s", ".ts", "master.m3u8"], &mut media);
    files_ending(&dir.join("api"), &[".m4s", ".ts", ".m4a", ".mp4", ".mkv"], &mut media);
    assert!(media.is_empty(), "media where it was never needed: {media:?}");

    // The one master, as the API node serves it from the bucket, names both
    // caption tracks and the dub: both made on one worker, packaged under the
    // database's lock.
    let playback = curl(&["-H", "Authorization: Bearer secret", &format!("{url}/v1/videos/{id}/playback")]);
    let master_url = format!("{url}{}", playback["url"].as_str().expect("url"));
    let master =
        Command::new("curl").args(["-s", "--max-time", "30", &master_url]).output().expect("curl").stdout;
    let master = String::from_utf8_lossy(&master);
    assert!(master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"es\""), "{master}");
    assert!(master.contains("TYPE=AUDIO") && master.contains("dub-es"), "{master}");
    // A segment is redirected to a presigned URL of the store, which serves it.
    let playlist_name =
        master.lines().find(|l| l.ends_with(".m3u8") && !l.starts_with('#')).expect("variant");
    let base = master_url.trim_end_matches("master.m3u8");
    let playlist = Command::new("curl")
        .args(["-s", "--max-time", "30", &format!("{base}{playlist_name}")])
        .output()
        .expect("curl")
        .stdout;
    let playlist = String::from_utf8_lossy(&playlist).into_owned();
    // CMAF, the default: fMP4 fragments after an init segment, both presigned.
    let segment = playlist.lines().find(|l| !l.is_empty() && !l.starts_with('#')).expect("segment");
    assert!(segment.ends_with(".m4s"), "{playlist}");
    let init = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.split('"').next())
        .expect("an init segment");
    let folder = playlist_name.rsplit_once('/').map(|(f, _)| format!("{f}/")).unwrap_or_default();
    for name in [segment, init] {
        let head = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                &format!("{base}{folder}{name}"),
            ])
            .output()
            .expect("curl");
        let head = String::from_utf8_lossy(&head.stdout).into_owned();
        assert!(head.starts_with("307 http://127.0.0.1:39000/babelcast-test/videos/"), "{name}: {head}");
        assert!(head.contains("X-Amz-Signature="), "{name}: {head}");
        // The store serves what it was redirected to.
        let got = Command::new("curl")
            .args([
                "-s",
                "-L",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                &format!("{base}{folder}{name}"),
            ])
            .output()
            .expect("curl");
        let got = String::from_utf8_lossy(&got.stdout).into_owned();
        let size: u64 = got.split(' ').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(got.starts_with("200 ") && size > 0, "{name}: {got}");
    }
    // The DASH manifest over the same files is served by babelcast itself (its
    // relative URLs would break behind a presigned redirect).
    let dash_url = format!("{url}{}", playback["dash"].as_str().expect("a dash link"));
    let dash = Command::new("curl")
        .args(["-s", "--max-time", "30", "-w", "\n%{http_code} %{content_type}", &dash_url])
        .output()
        .expect("curl");
    let dash = String::from_utf8_lossy(&dash.stdout).into_owned();
    assert!(dash.ends_with("200 application/dash+xml") && dash.contains("<MPD"), "{dash}");
    assert!(dash.contains("lang=\"es\""), "the dub and the captions are in the MPD: {dash}");
    // API nodes are stateless: a second one, on a fresh folder, serves the link
    // the first signed, from the bucket.
    let (second, rest) = start(
        dir,
        &["serve", "--no-workers", "--listen", "127.0.0.1:0", "--data-dir", "api2"],
        "babelcast is serving on ",
    );
    nodes.0.push(second);
    let other = rest.split_whitespace().next().expect("url").to_owned();
    let again = Command::new("curl")
        .args(["-s", "--max-time", "30", &master_url.replace(&url, &other)])
        .output()
        .expect("curl")
        .stdout;
    assert_eq!(String::from_utf8_lossy(&again), master, "the same master from the other node");
    // And ffprobe plays the whole package through babelcast and the store.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", &master_url])
        .output()
        .expect("ffprobe");
    let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap_or_else(|_| {
        panic!("ffprobe: {}", String::from_utf8_lossy(&probe.stderr));
    });
    assert!((duration - 8.0).abs() < 0.3, "{duration}");

    // Deleting the video takes it out of the bucket, with the cache entries only
    // it used (the bucket outlives test runs: compare before and after).
    let cached_before = runtime.block_on(remote.list("cache")).expect("list");
    let deleted = Command::new("curl")
        .args(["-s", "-w", " %{http_code}", "-X", "DELETE"])
        .args(["-H", "Authorization: Bearer secret", &format!("{url}/v1/videos/{id}")])
        .output()
        .expect("curl");
    let deleted = String::from_utf8_lossy(&deleted.stdout).into_owned();
    assert!(deleted.ends_with(" 200"), "{deleted}");
    let left = runtime.block_on(remote.list(&format!("videos/{id}"))).expect("list");
    assert!(left.is_empty(), "still in the bucket: {left:?}");
    let cached_after = runtime.block_on(remote.list("cache")).expect("list");
    let gone: Vec<&String> = cached_before.iter().filter(|k| !cached_after.contains(k)).collect();
    for stage in ["encode/", "transcribe/", "translate/", "dub/"] {
        assert!(gone.iter().any(|k| k.starts_with(stage)), "no {stage} entry deleted: {gone:?}");
    }
    assert!(cached_after.iter().all(|k| cached_before.contains(k)), "{cached_after:?}");
    drop(nodes);
    psql("postgres", &format!("DROP DATABASE IF EXISTS {database}"));
}

#[test]
fn a_wrong_bucket_stops_a_node_at_start_with_what_to_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = S3.replace("babelcast-test", "no-such-bucket");
    std::fs::write(tmp.path().join("babelcast.toml"), format!("[server]\ntoken = \"t\"\n[s3]\n{s3}"))
        .expect("config");
    let out =
        common::babelcast(tmp.path()).args(["worker", "--data-dir", "data"]).output().expect("babelcast");
    let line = common::one_line_error(&out);
    assert!(line.contains("cannot use the [s3] bucket"), "{line}");
    assert!(line.contains("no-such-bucket"), "{line}");
}
