//! Scale-out under faults, with the real binaries on a real PostgreSQL
//! (`scripts/test-services.sh`): an API-only node (`serve --no-workers`) and three
//! `babelcast worker` processes share the database and the data folder. Six
//! videos go in; one worker is killed with SIGKILL in the middle of a stage,
//! another is stopped (SIGTERM) and started again. Every video completes, each
//! stage's outputs exist once and are valid, and no job is left claimed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{PG, curl, find_partials, psql, repo_models, start, talk_clip};

fn worker(dir: &Path, name: &str) -> Child {
    start(dir, &["worker", "--data-dir", "data", "--workers", "1", "--name", name], "babelcast worker").0
}

/// Waits until a task of `worker` (named `{worker}-{n}`) holds a running job of one
/// of `stages`; returns the stage.
fn wait_running(database: &str, worker: &str, stages: &str) -> String {
    let started = Instant::now();
    loop {
        let stage = psql(
            database,
            &format!(
                "SELECT stage FROM jobs WHERE worker LIKE '{worker}-%' AND state = 'running' AND stage IN ({stages})"
            ),
        );
        if !stage.is_empty() {
            return stage;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{worker} never ran one of {stages}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_workers_on_postgres_lose_nothing_when_one_is_killed_and_one_restarted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let database = format!("scale_{}", std::process::id());
    psql("postgres", &format!("DROP DATABASE IF EXISTS {database}"));
    psql("postgres", &format!("CREATE DATABASE {database}"));
    let models = std::path::absolute(repo_models()).expect("models");
    // `medium` makes each encode last long enough to be interrupted.
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n\
             [speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\nthreads = 1\n\
             [server]\ntoken = \"secret\"\nlease_secs = 3\nretry_backoff_secs = 1\n\
             database_url = \"{PG}/{database}\"\n\
             [media.ladder]\npreset = \"medium\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 350\n"
        ),
    )
    .expect("config");
    // Six different videos (the speech starts at a different second in each), so
    // no stage is served from another's cache.
    let clips: Vec<PathBuf> = (0..6)
        .map(|i| {
            let clip = dir.join(format!("talk{i}.mp4"));
            talk_clip(&clip, i);
            clip
        })
        .collect();

    let (mut api, rest) = start(
        dir,
        &["serve", "--no-workers", "--listen", "127.0.0.1:0", "--data-dir", "data"],
        "babelcast is serving on ",
    );
    let url = rest.split_whitespace().next().expect("url").to_owned();
    let mut workers: Vec<Child> = ["w1", "w2", "w3"].iter().map(|name| worker(dir, name)).collect();
    let ids: Vec<String> = clips
        .iter()
        .map(|clip| {
            let accepted = curl(&[
                "-H",
                "Authorization: Bearer secret",
                "-F",
                &format!("file=@{}", clip.display()),
                "-F",
                "options={\"language\":\"en\"}",
                &format!("{url}/v1/videos"),
            ]);
            accepted["id"].as_str().unwrap_or_else(|| panic!("accepted: {accepted}")).to_owned()
        })
        .collect();

    // w1 dies mid-stage; its job must be taken over when the lease runs out.
    let killed_stage = wait_running(&database, "w1", "'encode', 'transcribe'");
    let killed_job = psql(&database, "SELECT id FROM jobs WHERE worker LIKE 'w1-%' AND state = 'running'");
    workers[0].kill().expect("SIGKILL");
    workers[0].wait().expect("reaped");
    // w2 is stopped gracefully mid-stage (it finishes the stage) and started again.
    wait_running(&database, "w2", "'encode', 'transcribe', 'captions', 'probe'");
    let stopped = Command::new("kill").args(["-TERM", &workers[1].id().to_string()]).status().expect("kill");
    assert!(stopped.success());
    let status = workers[1].wait().expect("w2 stops");
    assert!(status.success(), "a stopped worker exits cleanly: {status}");
    workers[1] = worker(dir, "w2");

    let started = Instant::now();
    for id in &ids {
        loop {
            let video = curl(&["-H", "Authorization: Bearer secret", &format!("{url}/v1/videos/{id}")]);
            if video["state"] != "processing" {
                assert_eq!(video["state"], "completed", "{video}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "not finished: {video}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    // The killed job ran again (attempt 2) on another worker; nothing is claimed,
    // queued or dead.
    let rerun =
        psql(&database, &format!("SELECT attempts || ' ' || worker FROM jobs WHERE id = {killed_job}"));
    assert!(rerun.starts_with("2 ") && !rerun.contains(" w1-"), "{killed_stage} job {killed_job}: {rerun}");
    assert_eq!(psql(&database, "SELECT count(*) FROM jobs WHERE state <> 'done'"), "0");
    assert_eq!(
        psql(&database, "SELECT count(*) FROM jobs"),
        (6 * 4).to_string(),
        "probe, encode, transcribe, captions"
    );
    assert_eq!(
        psql(&database, "SELECT count(*) FROM events WHERE kind = 'completed'"),
        "6",
        "one completion each"
    );
    assert_eq!(
        psql(&database, "SELECT count(*) FROM events WHERE kind = 'playable'"),
        "6",
        "published once each"
    );

    // Each stage's outputs exist once, complete and valid.
    let data = dir.join("data");
    for id in &ids {
        let hls = data.join(format!("videos/{id}/hls"));
        let master = std::fs::read_to_string(hls.join("master.m3u8")).expect("master");
        assert!(master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"en\""), "{master}");
        let playlist = std::fs::read_to_string(hls.join("240p/index.m3u8")).expect("rung playlist");
        let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
        assert_eq!(segments.len(), 4, "{id}: {playlist}");
        assert!(segments.iter().all(|s| hls.join("240p").join(s).is_file()));
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
            .arg(hls.join("master.m3u8"))
            .output()
            .expect("ffprobe");
        let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().expect("a duration");
        assert!((duration - 8.0).abs() < 0.5, "{id}: {duration}");
        let vtt =
            std::fs::read_to_string(data.join(format!("videos/{id}/captions/en.vtt"))).expect("captions");
        assert!(vtt.starts_with("WEBVTT") && vtt.contains("-->"), "{vtt}");
    }
    for stage in ["encode", "transcribe"] {
        let outputs = std::fs::read_dir(data.join("cache").join(stage)).expect("cache").count();
        assert_eq!(outputs, 6, "one {stage} output per video, none twice");
    }
    let mut partials = Vec::new();
    find_partials(&data, &mut partials);
    assert!(partials.is_empty(), "leftovers: {partials:?}");

    for mut child in workers.into_iter().skip(1) {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    api.kill().expect("kill api");
    let _ = api.wait();
    psql("postgres", &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
}
