//! `babelcast videos`: the operator's API from the command line, against a
//! running `babelcast serve` — upload, list, show, wait, approve, review links,
//! downloads, retry, cancel and delete. The server's URL and the key come from
//! `[client]` in the config or the environment (`BABELCAST_CLIENT__URL`,
//! `BABELCAST_CLIENT__KEY`), never from a flag (a key in a command line is seen
//! by every user of the machine).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use babelcast_core::Secret;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::config::Config;

/// What `babelcast videos` does.
#[derive(Debug, Subcommand)]
pub enum VideosAction {
    /// Upload a video with its options; prints its id (with --wait, follows it
    /// to the end).
    Upload {
        /// The video file.
        file: PathBuf,
        /// The spoken language (a Whisper code such as en), or auto.
        #[arg(long, default_value = "auto")]
        language: String,
        /// Translate the captions into these languages and dub them, e.g. es,it.
        #[arg(long, value_delimiter = ',', value_name = "LANGS")]
        to: Vec<String>,
        /// A glossary file for the translations (JSON: keep, force).
        #[arg(long, value_name = "FILE")]
        glossary: Option<PathBuf>,
        /// Wait for a person to approve the transcript before translating.
        #[arg(long)]
        review: bool,
        /// Wait for a person to approve the translations before dubbing.
        #[arg(long)]
        review_translations: bool,
        /// Follow the video until it is done or awaits review.
        #[arg(long)]
        wait: bool,
    },
    /// The videos, newest first: id, state, when, name.
    List {
        /// Only videos in this state (processing, awaiting_review, completed, ...).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// A video's status as JSON: state, stages, warnings, outputs, downloads.
    Show {
        /// The video id.
        id: String,
    },
    /// Follow a video until it is done or awaits review. Exit status: 0 done,
    /// 1 failed or cancelled, 3 done with warnings, 4 awaiting review.
    Wait {
        /// The video id.
        id: String,
    },
    /// Approve the transcript (or, when they wait, the translations).
    Approve {
        /// The video id.
        id: String,
    },
    /// A review link to send to a reviewer: opens the review page of this one
    /// video, nothing else; prints its URL.
    ReviewLink {
        /// The video id.
        id: String,
        /// How long it works, seconds (the server's default if unset).
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
    /// Download a video's outputs (all of them, or the paths given, e.g.
    /// mp4/es.mp4 captions/es.vtt) into a folder.
    Download {
        /// The video id.
        id: String,
        /// Which outputs; all if none.
        paths: Vec<String>,
        /// The folder to write them to.
        #[arg(short, long, default_value = ".")]
        out: PathBuf,
    },
    /// Run a stage that died again (e.g. dub-es).
    Retry {
        /// The video id.
        id: String,
        /// The stage.
        stage: String,
    },
    /// Stop a video in progress; what it made stays.
    Cancel {
        /// The video id.
        id: String,
    },
    /// Delete a video and everything it made.
    Delete {
        /// The video id.
        id: String,
    },
}

/// The server and the key.
struct Client {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl Client {
    fn new(config: &Config) -> anyhow::Result<Client> {
        let base = config
            .client
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen))
            .trim_end_matches('/')
            .to_owned();
        let key = match &config.client.key {
            Some(key) => key.clone(),
            None => {
                let path = config.server.data_dir.join("api-token");
                let token = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "no key: set BABELCAST_CLIENT__KEY (or client.key in the config), or run this where the server's {} can be read",
                        path.display()
                    )
                })?;
                Secret::from(token.trim().to_owned())
            }
        };
        Ok(Client { http: reqwest::Client::new(), base, key })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(self.key.expose())
    }

    /// Sends a request; the JSON answer, or the server's error as the message.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response =
            request.send().await.with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = &body["error"];
            match (error["code"].as_str(), error["message"].as_str()) {
                (Some(code), Some(message)) => bail!("the server answered {status}: {message} ({code})"),
                _ => bail!("the server answered {status}"),
            }
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.request(reqwest::Method::POST, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }
}

/// `babelcast videos ...`.
pub async fn run(config: &Config, action: VideosAction) -> anyhow::Result<ExitCode> {
    let client = Client::new(config)?;
    match action {
        VideosAction::Upload { file, language, to, glossary, review, review_translations, wait } => {
            let mut options = json!({
                "language": language, "to": to, "review": review, "review_translations": review_translations,
            });
            if let Some(path) = glossary {
                options["glossary"] = serde_json::to_value(crate::config::read_glossary(&path)?)?;
            }
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let part = reqwest::multipart::Part::file(&file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?
                .file_name(name);
            let form =
                reqwest::multipart::Form::new().text("options", options.to_string()).part("file", part);
            let accepted =
                client.send(client.request(reqwest::Method::POST, "/v1/videos").multipart(form)).await?;
            let id = accepted["id"].as_str().context("the server gave no id")?.to_owned();
            println!("{id}");
            if wait { follow(&client, &id).await } else { Ok(ExitCode::SUCCESS) }
        }
        VideosAction::List { state, limit, json } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(state) = state {
                query.push(("state", state));
            }
            let page = client.send(client.request(reqwest::Method::GET, "/v1/videos").query(&query)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(ExitCode::SUCCESS);
            }
            for video in page["videos"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<24} {}  {}",
                    video["id"].as_str().unwrap_or_default(),
                    video["state"].as_str().unwrap_or_default(),
                    when(video["created_ms"].as_i64().unwrap_or_default()),
                    video["source_name"].as_str().unwrap_or_default(),
                );
            }
            if page["next_cursor"].is_string() {
                eprintln!("(more: --limit up to 500)");
            }
            Ok(ExitCode::SUCCESS)
        }
        VideosAction::Show { id } => {
            let status = client.get(&format!("/v1/videos/{}", segment(&id)?)).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(ExitCode::SUCCESS)
        }
        VideosAction::Wait { id } => follow(&client, segment(&id)?).await,
        VideosAction::Approve { id } => {
            let approved = client.post(&format!("/v1/videos/{}/approve", segment(&id)?), None).await?;
            println!("approved: {}", approved["approved"].as_str().unwrap_or("yes"));
            Ok(ExitCode::SUCCESS)
        }
        VideosAction::ReviewLink { id, ttl_secs } => {
            let body = ttl_secs.map(|ttl| json!({ "ttl_secs": ttl }));
            let link = client.post(&format!("/v1/videos/{}/links/review", segment(&id)?), body).await?;
            println!("{}{}", client.base, link["url"].as_str().context("the server gave no url")?);
            Ok(ExitCode::SUCCESS)
        }
        VideosAction::Download { id, paths, out } => download(&client, segment(&id)?, paths, &out).await,
        VideosAction::Retry { id, stage } => {
            client
                .post(&format!("/v1/videos/{}/stages/{}/retry", segment(&id)?, segment(&stage)?), None)
                .await?;
            println!("{stage} queued again");
            Ok(ExitCode::SUCCESS)
        }
        VideosAction::Cancel { id } => {
            client.post(&format!("/v1/videos/{}/cancel", segment(&id)?), None).await?;
            println!("cancelled");
            Ok(ExitCode::SUCCESS)
        }
        VideosAction::Delete { id } => {
            client
                .send(client.request(reqwest::Method::DELETE, &format!("/v1/videos/{}", segment(&id)?)))
                .await?;
            println!("deleted");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An id or stage as one URL path segment (nothing that could walk elsewhere).
fn segment(text: &str) -> anyhow::Result<&str> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("{text:?} is not a video id or stage name");
    }
    Ok(text)
}

/// Unix ms as UTC `YYYY-MM-DD HH:MM`.
fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

/// Follows a video, one line per change of its state or stages, until it is
/// done or awaits review.
async fn follow(client: &Client, id: &str) -> anyhow::Result<ExitCode> {
    let mut last = String::new();
    loop {
        let status = client.get(&format!("/v1/videos/{id}")).await?;
        let state = status["state"].as_str().unwrap_or_default().to_owned();
        let stages: Vec<String> = status["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{} {}", s["stage"].as_str().unwrap_or("?"), s["state"].as_str().unwrap_or("?")))
            .collect();
        let line = format!("{state}: {}", stages.join(", "));
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        let code = match state.as_str() {
            "completed" => Some(0),
            "failed" | "cancelled" => Some(1),
            "completed_with_warnings" => Some(3),
            "awaiting_review" => Some(4),
            _ => None,
        };
        if let Some(code) = code {
            for warning in status["warnings"].as_array().into_iter().flatten() {
                eprintln!("warning: {}", warning.as_str().unwrap_or_default());
            }
            if let Some(error) = status["error"].as_str() {
                eprintln!("error: {error}");
            }
            println!("{state}");
            return Ok(ExitCode::from(code));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Writes each wanted output to `out`, named as the server names it
/// (`talk.es.mp4`), streamed to disk.
async fn download(client: &Client, id: &str, paths: Vec<String>, out: &Path) -> anyhow::Result<ExitCode> {
    let status = client.get(&format!("/v1/videos/{id}")).await?;
    let available: Vec<(String, String)> = status["downloads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| Some((d["path"].as_str()?.to_owned(), d["url"].as_str()?.to_owned())))
        .collect();
    let wanted: Vec<&(String, String)> = if paths.is_empty() {
        available.iter().collect()
    } else {
        let mut wanted = Vec::new();
        for path in &paths {
            let found = available.iter().find(|(p, _)| p == path).with_context(|| {
                let names: Vec<&str> = available.iter().map(|(p, _)| p.as_str()).collect();
                format!("the video has no {path}; it has: {}", names.join(", "))
            })?;
            wanted.push(found);
        }
        wanted
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (path, url) in wanted {
        let mut response = client
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", client.base))?;
        if !response.status().is_success() {
            bail!("{path}: the server answered {}", response.status());
        }
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("filename=\"").nth(1))
            .and_then(|v| v.split('"').next())
            .map(babelcast_pipeline::display_name)
            .unwrap_or_else(|| path.replace('/', "."));
        let target = out.join(&name);
        let mut file = tokio::fs::File::create(&target)
            .await
            .with_context(|| format!("cannot write {}", target.display()))?;
        use tokio::io::AsyncWriteExt as _;
        while let Some(chunk) = response.chunk().await.with_context(|| format!("{path}: cut off"))? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        println!("{}", target.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_one_path_segment_and_times_read_as_dates() {
        assert!(segment("0123abcd").is_ok() && segment("dub-es").is_ok());
        for bad in ["", "../keys", "a/b", "a?b", "a b"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
        assert_eq!(when(0), "1970-01-01 00:00");
        assert_eq!(when(1_796_169_600_000), "2026-12-02 00:00");
    }
}
