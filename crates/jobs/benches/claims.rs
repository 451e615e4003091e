//! Claim throughput: how many stage claims per second the queue sustains with 8
//! concurrent workers whose jobs do nothing (claim, then complete), on each
//! backend in the same run: a SQLite file, and the PostgreSQL test server
//! (`scripts/test-services.sh`) when it answers.
//!
//! `cargo bench -p babelcast-jobs --bench claims` (`JOBS=N` to change the 4000 jobs).

use std::time::{Duration, Instant};

use babelcast_jobs::{Db, NewVideo};

const WORKERS: usize = 8;
const STAGES: usize = 10;
const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:54329/postgres";

async fn fill(db: &Db, jobs: usize) {
    for v in 0..jobs / STAGES {
        let video = NewVideo {
            id: format!("v{v}"),
            source_name: "a.mp4".into(),
            source_sha256: "00".into(),
            source_ext: "mp4".into(),
            options: serde_json::json!({}),
        };
        db.create_video(&video, "s0", 3).await.expect("create");
        for s in 1..STAGES {
            db.enqueue(&video.id, &format!("s{s}"), 3).await.expect("enqueue");
        }
    }
}

async fn drain(db: &Db) -> (usize, Duration) {
    let stages: Vec<String> = (0..STAGES).map(|s| format!("s{s}")).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let db = db.clone();
        let stages = stages.clone();
        tasks.push(tokio::spawn(async move {
            let names: Vec<&str> = stages.iter().map(String::as_str).collect();
            let me = format!("w{w}");
            let mut n = 0;
            while let Some(job) = db.claim(&me, &names, Duration::from_secs(30)).await.expect("claim") {
                assert!(db.complete(job.id, &me).await.expect("complete"));
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    (total, started.elapsed())
}

fn report(name: &str, (claims, took): (usize, Duration)) -> f64 {
    let rate = claims as f64 / took.as_secs_f64();
    println!(
        "{name:<10} {claims:>6} claims in {:>6.2} s = {rate:>8.0} claims/s ({WORKERS} workers)",
        took.as_secs_f64()
    );
    rate
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let jobs: usize = std::env::var("JOBS").ok().and_then(|j| j.parse().ok()).unwrap_or(4000);
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite = Db::open(&dir.path().join("bench.db")).await.expect("sqlite");
    fill(&sqlite, jobs).await;
    let sqlite_rate = report("sqlite", drain(&sqlite).await);

    use sqlx::Connection;
    match sqlx::PgConnection::connect(POSTGRES_ADMIN).await {
        Ok(mut admin) => {
            let name = format!("bench_claims_{}", std::process::id());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create database");
            let pg =
                Db::connect(&format!("postgres://postgres@127.0.0.1:54329/{name}")).await.expect("postgres");
            fill(&pg, jobs).await;
            let pg_rate = report("postgres", drain(&pg).await);
            println!("postgres / sqlite = {:.2}", pg_rate / sqlite_rate);
            drop(pg);
            let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await;
        }
        Err(e) => println!(
            "postgres   skipped: the test server does not answer ({e}); run scripts/test-services.sh"
        ),
    }
}
