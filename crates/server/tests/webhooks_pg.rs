//! Two API nodes on one PostgreSQL database (the server `scripts/test-services.sh`
//! starts on 127.0.0.1:54329) deliver to the same webhook: every event arrives
//! once, in order, not once per node.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use babelcast_jobs::{Db, NewVideo};
use babelcast_server::webhooks::{Webhook, run};

const PG: &str = "postgres://postgres@127.0.0.1:54329";

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &format!("{PG}/postgres"), "-c", sql])
        .output()
        .expect("psql (scripts/test-services.sh installs PostgreSQL)");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_nodes_deliver_each_event_once() {
    let database = format!("webhooks_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {database}"));
    psql(&format!("CREATE DATABASE {database}"));
    let url = format!("{PG}/{database}");

    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let app = {
        let seen = Arc::clone(&seen);
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    let event: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    seen.lock().expect("lock").push(event["id"].as_i64().expect("id"));
                    // Slow enough that both nodes are running while events flow.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = Webhook {
        url: format!("http://{}/hook", listener.local_addr().expect("addr")),
        secret: babelcast_core::Secret::new("s"),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let db = Db::connect(&url).await.expect("connects");
        nodes.push(tokio::spawn(run(db, vec![hook.clone()], Duration::from_millis(50), stopped.clone())));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let db = Db::connect(&url).await.expect("connects");
    let video = NewVideo {
        id: "v1".into(),
        source_name: "a.mp4".into(),
        source_sha256: "00".into(),
        source_ext: "mp4".into(),
        options: serde_json::json!({}),
    };
    db.create_video(&video, "probe", 3).await.expect("create");
    for i in 0..60 {
        db.add_event("v1", "stage_started", Some("probe"), &format!("event {i}"), None).await.expect("event");
    }
    let expected: Vec<i64> = db.all_events(0, 1000).await.expect("events").iter().map(|e| e.id).collect();
    assert!(expected.len() >= 61);
    let started = Instant::now();
    while seen.lock().expect("lock").len() < expected.len() {
        assert!(started.elapsed() < Duration::from_secs(30), "delivered {:?}", seen.lock().expect("lock"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a duplicate to show up, if any node were to send one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _ = stop.send(true);
    for node in nodes {
        tokio::time::timeout(Duration::from_secs(10), node).await.expect("stops").expect("task");
    }
    assert_eq!(*seen.lock().expect("lock"), expected, "each event once, in order");
    drop(db);
    psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
}
