//! Webhooks: every event (except progress ticks) is POSTed as JSON to each
//! configured URL, signed, in order, from a background task, so a slow or dead
//! receiver never blocks the pipeline.
//!
//! Headers: `X-Babelcast-Event` (the kind), `X-Babelcast-Timestamp` (Unix seconds)
//! and `X-Babelcast-Signature: sha256=<hex>`, the HMAC-SHA256 with the hook's secret
//! over `{timestamp}.{body}` (a receiver checks it and rejects old timestamps to
//! stop replays). A failed delivery is retried with doubling backoff; after
//! [`MAX_TRIES`] it is logged and skipped. Each hook's position in the event log is
//! stored in the database, so a restart resumes where it stopped. With several API
//! nodes on PostgreSQL, each batch is delivered under the database's lock for that
//! hook, from the position the last deliverer stored: every event once, not once
//! per node.

use std::time::Duration;

use babelcast_jobs::Db;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::signing::webhook_signature;

/// Deliveries tried per event and hook.
pub const MAX_TRIES: u32 = 6;

/// One webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// The HMAC secret shared with the receiver (never printed: `[redacted]`).
    pub secret: babelcast_core::Secret,
}

/// Delivers events to `hooks` until `stop` turns true. `first_backoff` is the delay
/// before the first retry.
pub async fn run(db: Db, hooks: Vec<Webhook>, first_backoff: Duration, mut stop: watch::Receiver<bool>) {
    if hooks.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: cannot build an HTTP client");
            return;
        }
    };
    let tasks: Vec<_> = hooks
        .into_iter()
        .map(|hook| {
            let (db, client, stop) = (db.clone(), client.clone(), stop.clone());
            tokio::spawn(async move { deliver_all(db, client, hook, first_backoff, stop).await })
        })
        .collect();
    let _ = stop.changed().await;
    for task in tasks {
        let _ = task.await;
    }
}

async fn deliver_all(
    db: Db,
    client: reqwest::Client,
    hook: Webhook,
    first_backoff: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let cursor_key = format!("webhook-cursor:{}", hook.url);
    let lock_name = format!("webhook {}", hook.url);
    while !*stop.borrow() {
        // Another node may be delivering to this hook: wait for it, then go on
        // from where it stopped.
        let held = tokio::select! {
            held = db.lock(&lock_name) => held,
            _ = stop.changed() => return,
        };
        let delivered = match held {
            Ok(_held) => deliver_batch(&db, &client, &hook, &cursor_key, first_backoff, &stop).await,
            Err(e) => Err(e),
        };
        match delivered {
            Ok(0) => tokio::time::sleep(Duration::from_millis(300)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: cannot read events");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Delivers up to 100 events after the stored position, storing it after each;
/// returns how many events it went through.
async fn deliver_batch(
    db: &Db,
    client: &reqwest::Client,
    hook: &Webhook,
    cursor_key: &str,
    first_backoff: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<usize, babelcast_jobs::DbError> {
    let after: i64 = match db.get_value(cursor_key).await? {
        Some(v) => v.parse().unwrap_or(0),
        None => {
            // A new hook starts with what happens from now on.
            let latest = db.latest_event_id().await?;
            db.set_value(cursor_key, &latest.to_string()).await?;
            latest
        }
    };
    let events = db.all_events(after, 100).await?;
    let mut done = 0;
    for event in events {
        if *stop.borrow() {
            break;
        }
        if event.kind != "progress" {
            deliver(client, hook, &event, first_backoff, stop).await;
        }
        db.set_value(cursor_key, &event.id.to_string()).await?;
        done += 1;
    }
    Ok(done)
}

async fn deliver(
    client: &reqwest::Client,
    hook: &Webhook,
    event: &babelcast_jobs::Event,
    first_backoff: Duration,
    stop: &watch::Receiver<bool>,
) {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let mut backoff = first_backoff;
    for attempt in 1..=MAX_TRIES {
        let timestamp = babelcast_jobs::now_ms() / 1000;
        let result = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-babelcast-event", &event.kind)
            .header("x-babelcast-timestamp", timestamp.to_string())
            .header(
                "x-babelcast-signature",
                webhook_signature(hook.secret.expose().as_bytes(), timestamp, &body),
            )
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(url = %hook.url, status = %response.status(), attempt, "webhook refused")
            }
            Err(e) => tracing::warn!(url = %hook.url, error = %e, attempt, "webhook failed"),
        }
        if attempt == MAX_TRIES || *stop.borrow() {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    tracing::error!(url = %hook.url, event = event.id, "webhook given up after {MAX_TRIES} tries");
}
