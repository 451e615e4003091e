//! The conformance suite: the same tests on both backends, SQLite files and a real
//! PostgreSQL server (`scripts/test-services.sh` starts one on 127.0.0.1:54329;
//! each test gets a database of its own).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use babelcast_jobs::{Backend, Db, Failure, JobState, NewVideo, now_ms};

/// The test server's administration URL (trust authentication, loopback only).
const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:54329/postgres";

/// A fresh, empty database of either backend, kept alive with its owner.
struct Fresh {
    db: Db,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn fresh(backend: Backend) -> Fresh {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tmp");
            let url = dir.path().join("babelcast.db").display().to_string();
            let db = Db::connect(&url).await.expect("opens");
            Fresh { db, url, _dir: Some(dir) }
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(POSTGRES_ADMIN)
                .await
                .expect("the test PostgreSQL server answers (run scripts/test-services.sh)");
            let name = format!("conformance_{}_{}", std::process::id(), unique());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create database");
            let url = format!("postgres://postgres@127.0.0.1:54329/{name}");
            let db = Db::connect(&url).await.expect("connects and migrates");
            Fresh { db, url, _dir: None }
        }
    }
}

/// A name part no other test of this process uses.
fn unique() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    format!("{:x}", h.finish())
}

fn video(id: &str) -> NewVideo {
    NewVideo {
        id: id.into(),
        source_name: "a.mp4".into(),
        source_sha256: "00".into(),
        source_ext: "mp4".into(),
        options: serde_json::json!({}),
    }
}

const LEASE: Duration = Duration::from_secs(30);

async fn a_job_is_claimed_once_and_completed_by_its_holder_only(backend: Backend) {
    let Fresh { db, .. } = &fresh(backend).await;
    assert_eq!(db.backend(), backend);
    db.create_video(&video("v1"), "probe", 3).await.expect("create");
    let job = db.claim("w1", &["probe"], LEASE).await.expect("claim").expect("a job");
    assert_eq!((job.stage.as_str(), job.attempts, job.state), ("probe", 1, JobState::Running));
    assert!(db.claim("w2", &["probe"], LEASE).await.expect("claim").is_none(), "held by w1");
    assert!(!db.complete(job.id, "w2").await.expect("complete"), "w2 does not hold it");
    assert!(db.complete(job.id, "w1").await.expect("complete"));
    assert_eq!(db.jobs("v1").await.expect("jobs")[0].state, JobState::Done);
    assert!(!db.enqueue("v1", "probe", 3).await.expect("enqueue"), "a stage is queued once per video");
}

async fn a_dead_workers_job_is_claimed_again_when_its_lease_runs_out(backend: Backend) {
    let Fresh { db, .. } = &fresh(backend).await;
    db.create_video(&video("v1"), "encode", 3).await.expect("create");
    let job = db.claim("dead", &["encode"], Duration::from_millis(50)).await.expect("claim").expect("job");
    assert!(db.claim("w2", &["encode"], LEASE).await.expect("claim").is_none());
    tokio::time::sleep(Duration::from_millis(80)).await;
    let again = db.claim("w2", &["encode"], LEASE).await.expect("claim").expect("reclaimed");
    assert_eq!((again.id, again.attempts), (job.id, 2));
    assert!(!db.heartbeat(job.id, "dead", LEASE).await.expect("hb"), "the old worker lost it");
    assert_eq!(db.fail(job.id, "dead", "late", false, LEASE).await.expect("fail"), Failure::LeaseLost);
    assert!(!db.complete(job.id, "dead").await.expect("complete"), "nor can it complete it");
    assert!(db.heartbeat(job.id, "w2", LEASE).await.expect("hb"));
}

async fn failures_back_off_then_the_job_dies_with_its_error(backend: Backend) {
    let Fresh { db, .. } = &fresh(backend).await;
    db.create_video(&video("v1"), "transcribe", 2).await.expect("create");
    let job = db.claim("w", &["transcribe"], LEASE).await.expect("claim").expect("job");
    let backoff = Duration::from_millis(100);
    let Failure::Retrying { at_ms } = db.fail(job.id, "w", "boom 1", false, backoff).await.expect("fail")
    else {
        panic!("should retry");
    };
    assert!(at_ms >= now_ms() + 50);
    assert!(db.claim("w", &["transcribe"], LEASE).await.expect("claim").is_none(), "backing off");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let job = db.claim("w", &["transcribe"], LEASE).await.expect("claim").expect("retried");
    assert_eq!(job.attempts, 2);
    assert_eq!(db.fail(job.id, "w", "boom 2", false, backoff).await.expect("fail"), Failure::Dead);
    let jobs = db.jobs("v1").await.expect("jobs");
    assert_eq!((jobs[0].state, jobs[0].last_error.as_deref()), (JobState::Dead, Some("boom 2")));
    assert!(jobs[0].finished_ms.is_some());
    assert!(db.claim("w", &["transcribe"], LEASE).await.expect("claim").is_none(), "dead stays dead");
    // Requeued (an edit, an operator): attempts start again.
    db.requeue("v1", "transcribe", 2).await.expect("requeue");
    let job = db.claim("w", &["transcribe"], LEASE).await.expect("claim").expect("requeued");
    assert_eq!((job.attempts, job.last_error), (1, None));
    // A permanent failure is dead at once.
    assert_eq!(db.fail(job.id, "w", "not media", true, backoff).await.expect("fail"), Failure::Dead);
}

async fn only_the_stages_a_worker_takes_are_claimed(backend: Backend) {
    let Fresh { db, .. } = &fresh(backend).await;
    db.create_video(&video("v1"), "encode", 3).await.expect("create");
    assert!(db.claim("w", &["transcribe"], LEASE).await.expect("claim").is_none());
    assert!(db.claim("w", &["enc"], LEASE).await.expect("claim").is_none(), "not a prefix match");
    assert!(db.claim("w", &[], LEASE).await.expect("claim").is_none(), "a worker that takes nothing");
    assert!(db.claim("w", &["transcribe", "encode"], LEASE).await.expect("claim").is_some());
    db.enqueue("v1", "dub-es", 3).await.expect("enqueue");
    let job = db.claim("w", &["dub"], LEASE).await.expect("claim").expect("per-language job");
    assert_eq!(job.stage, "dub-es");
}

async fn events_warnings_cache_values_and_counts_persist(backend: Backend) {
    let fresh = fresh(backend).await;
    {
        let db = &fresh.db;
        db.create_video(&video("v1"), "probe", 3).await.expect("create");
        db.add_event("v1", "warning", Some("transcribe"), "no speech", Some(serde_json::json!({"n": 1})))
            .await
            .expect("event");
        assert!(db.add_warning("v1", "no speech").await.expect("warn"), "a new warning");
        assert!(!db.add_warning("v1", "no speech").await.expect("warn twice"), "kept once");
        db.put_cached("k", "encode", "/cache/k").await.expect("cache");
        db.put_cached("k", "encode", "/other").await.expect("first wins");
        db.set_value("cursor", "7").await.expect("kv");
        db.set_value("cursor", "8").await.expect("kv again");
        let job = db.claim("w", &["probe"], LEASE).await.expect("claim").expect("job");
        assert!(db.complete(job.id, "w").await.expect("complete"));
    }
    // Opened again, as another process would.
    let db = Db::connect(&fresh.url).await.expect("reopens and migrates again");
    let events = db.events("v1", 0).await.expect("events");
    assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["received", "warning"]);
    assert_eq!(events[1].data, Some(serde_json::json!({"n": 1})));
    assert_eq!(db.events("v1", events[0].id).await.expect("events").len(), 1);
    assert_eq!(db.all_events(0, 10).await.expect("all").len(), 2);
    assert_eq!(db.latest_event_id().await.expect("latest"), events[1].id);
    assert_eq!(db.video("v1").await.expect("video").expect("exists").warnings, ["no speech"]);
    assert_eq!(db.cached("k").await.expect("cache").as_deref(), Some("/cache/k"));
    assert_eq!(db.get_value("cursor").await.expect("kv").as_deref(), Some("8"));
    assert_eq!(db.job_counts().await.expect("counts"), [("probe".to_owned(), JobState::Done, 1)]);
    let durations = db.stage_durations().await.expect("durations");
    assert_eq!((durations[0].0.as_str(), durations[0].1), ("probe", 1));
    assert!(durations[0].2 >= 0);
}

/// Eight workers racing for forty jobs: each job is claimed exactly once.
async fn concurrent_workers_never_claim_the_same_job(backend: Backend) {
    let Fresh { db, .. } = &fresh(backend).await;
    for i in 0..40 {
        db.create_video(&video(&format!("v{i}")), "probe", 3).await.expect("create");
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = db.claim(&format!("w{w}"), &["probe"], LEASE).await.expect("claim") {
                assert!(db.complete(job.id, &format!("w{w}")).await.expect("complete"));
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (40, 40), "every job once");
}

/// Warnings added from many tasks at once, while other writers commit in
/// between (events): every call succeeds and no warning is lost. On SQLite a
/// transaction that read before it wrote failed here with "database is
/// locked" instead of waiting (a retry answered 500 in the server test).
async fn concurrent_warning_edits_wait_for_each_other_and_lose_none(backend: Backend) {
    let Fresh { db, .. } = &fresh(backend).await;
    db.create_video(&video("v1"), "probe", 3).await.expect("create");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                db.add_event("v1", "note", None, "between", None).await.expect("event");
                assert!(db.add_warning("v1", &format!("w{t}-{i}")).await.expect("warn"));
                assert!(db.remove_warnings("v1", &format!("w{t}-{i}")).await.expect("take back"));
                assert!(db.add_warning("v1", &format!("kept{t}-{i}")).await.expect("warn again"));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let warnings = db.video("v1").await.expect("video").expect("exists").warnings;
    assert_eq!(warnings.len(), 80, "{warnings:?}");
    assert!(warnings.iter().all(|w| w.starts_with("kept")), "{warnings:?}");
}

/// One module per backend, each running every listed test on it.
macro_rules! conformance {
    ([$($backend:ident),*], $tests:tt) => {
        $(conformance!(@module $backend, $tests);)*
    };
    (@module $backend:ident, [$($test:ident),* $(,)?]) => {
        #[allow(non_snake_case)]
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(babelcast_jobs::Backend::$backend).await;
                }
            )*
        }
    };
}

conformance!(
    [Sqlite, Postgres],
    [
        a_job_is_claimed_once_and_completed_by_its_holder_only,
        a_dead_workers_job_is_claimed_again_when_its_lease_runs_out,
        failures_back_off_then_the_job_dies_with_its_error,
        only_the_stages_a_worker_takes_are_claimed,
        events_warnings_cache_values_and_counts_persist,
        concurrent_workers_never_claim_the_same_job,
        concurrent_warning_edits_wait_for_each_other_and_lose_none,
    ]
);

/// PostgreSQL wakes idle workers on other connections (other machines) at once;
/// they do not wait for their next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_idle_workers_elsewhere_with_notify() {
    let fresh = fresh(Backend::Postgres).await;
    let elsewhere = Db::connect(&fresh.url).await.expect("second connection");
    assert!(fresh.db.idle_poll() >= Duration::from_secs(1), "polling is only the fallback");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        elsewhere.wait_for_work(Duration::from_secs(20)).await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    fresh.db.create_video(&video("v1"), "probe", 3).await.expect("create");
    let waited = waiting.await.expect("task");
    assert!(waited < Duration::from_secs(10), "woken by NOTIFY, not the 20 s timeout: {waited:?}");
}

#[tokio::test]
async fn an_unsupported_database_url_is_refused_by_name() {
    let err = Db::connect("mysql://root@localhost/babelcast").await.expect_err("no MySQL backend");
    assert!(err.to_string().contains("unsupported database URL"), "{err}");
    let err =
        Db::connect("postgres://user:secret@127.0.0.1:1/none").await.expect_err("nothing listens on port 1");
    assert!(!err.to_string().contains("secret"), "the password is not shown: {err}");
}

/// A named lock excludes holders on other connections (other machines) until it
/// is dropped, and is not shared with other names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_locks_exclude_other_machines_until_dropped() {
    let fresh = fresh(Backend::Postgres).await;
    let elsewhere = Db::connect(&fresh.url).await.expect("second connection");
    let held = fresh.db.lock("package v1").await.expect("lock");
    let _other = tokio::time::timeout(Duration::from_secs(5), elsewhere.lock("package v2"))
        .await
        .expect("another name is free")
        .expect("lock");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let _lock = elsewhere.lock("package v1").await.expect("lock");
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "the second holder waits");
    drop(held);
    let waited =
        tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("granted").expect("task");
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
}
