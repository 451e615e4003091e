//! `babelcast serve` and `babelcast run`: the pipeline as a service, and the same
//! pipeline one-shot with progress bars.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use babelcast_jobs::VideoState;
use babelcast_pipeline::{ALL_STAGES, Pipeline, VideoOptions, WorkerPool};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::config::Config;

/// Arguments of `babelcast serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on, e.g. 127.0.0.1:8080; port 0 picks a free one
    /// [config: server.listen].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The data folder [config: server.data_dir].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also ingest video files that appear in this folder.
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,
    /// Run no workers here: an API-only node [config: server.workers = 0].
    #[arg(long)]
    pub no_workers: bool,
}

/// Arguments of `babelcast worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The data folder, shared with the API nodes [config: server.data_dir].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Worker tasks in this process [config: server.workers].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Only these stages, e.g. transcribe or encode,dub (dub takes dub-es, ...);
    /// all if not given.
    #[arg(long, value_delimiter = ',', value_name = "STAGES")]
    pub stages: Vec<String>,
    /// This worker's name in the job table [default: HOST-PID].
    #[arg(long)]
    pub name: Option<String>,
}

/// Arguments of `babelcast run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The video.
    pub file: PathBuf,
    /// The data folder the outputs go to (videos/{id}/...).
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// The spoken language (a Whisper code such as en), or auto.
    #[arg(long, default_value = "auto")]
    pub language: String,
    /// Translate the captions into these languages and dub them, e.g. es,it.
    #[arg(long, value_delimiter = ',', value_name = "LANGS")]
    pub to: Vec<String>,
    /// Replace the original audio under dubs instead of lowering it.
    #[arg(long)]
    pub replace_audio: bool,
    /// A glossary for the translations: a JSON file of terms to keep and forced
    /// translations, `{"keep": ["Dashwood"], "force": {"garden": "jardín"}}`.
    #[arg(long, value_name = "FILE")]
    pub glossary: Option<PathBuf>,
    /// Stop once the transcript is ready, for a person to review and approve it
    /// (`babelcast serve --data-dir OUT` serves the review page and finishes the
    /// video after the approval). Exit status 4.
    #[arg(long)]
    pub review: bool,
    /// Stop once the translations are ready, before any dub, for a person to
    /// approve them (as --review). Exit status 4.
    #[arg(long)]
    pub review_translations: bool,
    /// Subtitles to use as the transcript instead of speech recognition, with
    /// their language: LANG=FILE, e.g. en=talk.srt (SRT or WebVTT; UTF-8, UTF-16
    /// or a legacy encoding such as Windows-1252); or `embedded`: the video's own
    /// first text subtitle stream (in --language, if given). Cues that break the
    /// caption rules are set again; the rest are kept as they are.
    #[arg(long, value_name = "LANG=FILE|embedded")]
    pub transcript: Option<String>,
    /// Move the --transcript's cues to where their words are spoken (the speech
    /// is recognised and the text matched to it); a plain text script is then
    /// accepted too, its words set into cues by the caption rules.
    #[arg(long, requires = "transcript")]
    pub retime: bool,
    /// A human translation for a target language, LANG=FILE (SRT or WebVTT), e.g.
    /// es=talk.es.srt: that language's track and what its dub speaks, instead of
    /// a machine translation (the language needs no installed engine). Repeat
    /// for more languages; each must be in --to.
    #[arg(long, value_name = "LANG=FILE")]
    pub translation: Vec<String>,
}

/// `--transcript LANG=FILE` read: the subtitles, or what is wrong with them.
fn given_transcript(arg: &str, retime: bool) -> anyhow::Result<babelcast_pipeline::GivenTranscript> {
    let (lang, file) = arg
        .split_once('=')
        .with_context(|| format!("--transcript {arg:?}: give the language and the file, e.g. en=talk.srt"))?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read the transcript {file}"))?;
    Ok(babelcast_pipeline::GivenTranscript::read(lang, file, &bytes, retime)?)
}

/// Fails at start, with the fix, when this process will run transcription and a
/// model it loads is missing or damaged.
fn require_speech_models(config: &Config, stages: &[&str]) -> anyhow::Result<()> {
    if !stages.contains(&babelcast_pipeline::stage::TRANSCRIBE) {
        return Ok(());
    }
    babelcast_pipeline::speech::require_models(&config.speech, &config.models_dir).with_context(|| {
        format!("transcription cannot run with the models in {}", config.models_dir.display())
    })
}

async fn open(config: &Config, data_dir: &Path) -> anyhow::Result<Pipeline> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = std::path::absolute(data_dir)?;
    let db = crate::access_cmd::open_db(config, &data_dir).await?;
    let pipeline = Pipeline::new(db, config.pipeline(&data_dir))?;
    if let Some(remote) = pipeline.remote() {
        remote.check().await.with_context(|| {
            format!("cannot use the [s3] bucket: check its endpoint, bucket and keys ({})", remote.name())
        })?;
    }
    pipeline.recover(true).await?;
    Ok(pipeline)
}

/// `babelcast serve`.
pub fn serve(
    config: &Config,
    args: ServeArgs,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let workers = if args.no_workers { 0 } else { config.server.workers };
    if workers > 0 {
        require_speech_models(config, ALL_STAGES)?;
    }
    runtime.block_on(async {
        let data_dir = args.data_dir.unwrap_or_else(|| config.server.data_dir.clone());
        let pipeline = open(config, &data_dir).await?;
        let data_dir = pipeline.config().data_dir.clone();
        let server = crate::access_cmd::server_config(config, &data_dir)?;
        // Every watched folder, checked with its options before anything starts.
        let mut folders = config.server.watch.clone();
        folders.extend(args.watch.iter().cloned().map(crate::config::WatchFolder::with_defaults));
        let mut watch = Vec::new();
        for folder in &folders {
            let dir = babelcast_server::watch_folder::check(&folder.dir, &data_dir)?;
            let options = folder.options()?;
            pipeline
                .check_options(&options)
                .with_context(|| format!("the options of the watched folder {}", folder.dir.display()))?;
            watch.push((dir, options));
        }
        let listen = args.listen.unwrap_or_else(|| config.server.listen.clone());
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;

        let pool = WorkerPool::start(
            &pipeline,
            workers,
            ALL_STAGES,
            &format!("{}-{}", hostname(), std::process::id()),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let hooks = tokio::spawn(babelcast_server::webhooks::run(
            pipeline.db().clone(),
            config.server.webhooks.clone(),
            Duration::from_secs(1),
            stopped.clone(),
        ));
        let retention = config.server.delete_finished_after_secs.map(|secs| {
            tokio::spawn(babelcast_pipeline::keep_deleting_expired(
                pipeline.clone(),
                Duration::from_secs(secs),
                stopped.clone(),
            ))
        });
        let settle = Duration::from_secs(config.server.watch_settle_secs);
        let watchers: Vec<_> = watch
            .into_iter()
            .map(|(dir, options)| {
                tokio::spawn(babelcast_server::watch_folder::run(
                    pipeline.clone(),
                    dir,
                    settle,
                    options,
                    stopped.clone(),
                ))
            })
            .collect();

        println!("babelcast is serving on http://{addr} ({}, workers: {workers})", media_store(&pipeline));
        let _ = std::io::stdout().flush();
        let app = babelcast_server::router(pipeline, server);
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;

        eprintln!(
            "stopping: waiting for running stages to finish (send SIGKILL to stop at once; leases recover)"
        );
        let _ = stop.send(true);
        pool.shutdown().await;
        let _ = hooks.await;
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        for w in watchers {
            let _ = w.await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Where media live, for the start-up line.
fn media_store(pipeline: &Pipeline) -> String {
    let data = pipeline.config().data_dir.display();
    match pipeline.remote() {
        Some(remote) => format!("media: {}, working copy: {data}", remote.name()),
        None => format!("data: {data}"),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "worker".into())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// `babelcast worker`.
pub fn worker(
    config: &Config,
    args: WorkerArgs,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let stages: Vec<&'static str> = if args.stages.is_empty() {
        ALL_STAGES.to_vec()
    } else {
        let mut chosen = Vec::new();
        for stage in &args.stages {
            let known = ALL_STAGES.iter().find(|s| **s == stage.as_str()).ok_or_else(|| {
                anyhow::anyhow!("unknown stage {stage:?}: the stages are {}", ALL_STAGES.join(", "))
            })?;
            chosen.push(*known);
        }
        chosen
    };
    require_speech_models(config, &stages)?;
    runtime.block_on(async {
        let data_dir = args.data_dir.unwrap_or_else(|| config.server.data_dir.clone());
        let pipeline = open(config, &data_dir).await?;
        let workers = args.workers.unwrap_or(config.server.workers).max(1);
        let name = args.name.unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
        let pool = WorkerPool::start(&pipeline, workers, &stages, &name);
        println!(
            "babelcast worker {name}: {workers} tasks taking {} (database: {}, {})",
            stages.join(", "),
            pipeline.db().backend().name(),
            media_store(&pipeline)
        );
        let _ = std::io::stdout().flush();
        shutdown_signal().await;
        eprintln!("stopping: waiting for running stages to finish (leases recover anything killed)");
        pool.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `babelcast run`.
pub fn run(config: &Config, args: RunArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let embedded = args.transcript.as_deref() == Some("embedded");
    let transcript = args
        .transcript
        .as_deref()
        .filter(|_| !embedded)
        .map(|t| given_transcript(t, args.retime))
        .transpose()?;
    if args.transcript.is_none() || args.retime {
        require_speech_models(config, ALL_STAGES)?;
    }
    runtime.block_on(async {
        let pipeline = open(config, &args.out).await?;
        let glossary = match &args.glossary {
            Some(path) => crate::config::read_glossary(path)?,
            None => Default::default(),
        };
        let options = VideoOptions {
            glossary,
            language: args.language.clone(),
            to: args.to.clone(),
            dub_mode: if args.replace_audio {
                babelcast_media::DubMode::Replace
            } else {
                babelcast_media::DubMode::Duck
            },
            review: args.review,
            review_translations: args.review_translations,
            transcript,
            transcript_from: embedded.then(|| "embedded".to_owned()),
            translations: args
                .translation
                .iter()
                .map(|t| given_transcript(t, false))
                .collect::<anyhow::Result<_>>()?,
            retime: args.retime,
            ..VideoOptions::default()
        };
        let id = pipeline.ingest_path(&args.file, options).await?;
        let pool = WorkerPool::start(&pipeline, config.server.workers.max(1), ALL_STAGES, "run");

        // Progress bars per stage, fed by the video's event log.
        let bars = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:>11} [{bar:30}] {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let mut stage_bars: HashMap<String, ProgressBar> = HashMap::new();
        let mut after = 0;
        let state = loop {
            for event in pipeline.db().events(id.as_str(), after).await? {
                after = event.id;
                let stage = event.stage.clone().unwrap_or_default();
                let bar = |bars: &MultiProgress, map: &mut HashMap<String, ProgressBar>| {
                    map.entry(stage.clone())
                        .or_insert_with(|| {
                            let b = bars.add(ProgressBar::new(1000));
                            b.set_style(style.clone());
                            b.set_prefix(stage.clone());
                            b
                        })
                        .clone()
                };
                match event.kind.as_str() {
                    "stage_started" => bar(&bars, &mut stage_bars).set_message("running"),
                    "progress" => {
                        let f = event.data.as_ref().and_then(|d| d["fraction"].as_f64()).unwrap_or(0.0);
                        bar(&bars, &mut stage_bars).set_position((f * 1000.0) as u64);
                    }
                    "stage_finished" => {
                        let b = bar(&bars, &mut stage_bars);
                        b.set_position(1000);
                        b.finish_with_message(event.message.clone());
                    }
                    "stage_retrying" | "stage_failed" => {
                        bar(&bars, &mut stage_bars).abandon_with_message(event.message.clone())
                    }
                    "warning" | "playable" | "captions_published" | "dub_published" | "dub_qa" => {
                        let _ = bars.println(format!("{}: {}", event.kind, event.message));
                    }
                    _ => {}
                }
            }
            let video = pipeline.db().video(id.as_str()).await?.context("the video vanished")?;
            if video.state.is_final() || video.state == VideoState::AwaitingReview {
                break video;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        pool.shutdown().await;
        let layout = pipeline.layout();
        let events = pipeline.db().events(id.as_str(), 0).await?;
        let at = |kind: &str| events.iter().find(|e| e.kind == kind).map(|e| e.at_ms);
        let secs = |ms: i64| ms as f64 / 1000.0;
        let received = at("received").unwrap_or(0);
        let playable = at("playable")
            .map(|t| format!(", playable after {:.1} s", secs(t - received)))
            .unwrap_or_default();
        let last = events.last().map(|e| e.at_ms).unwrap_or(received);
        eprintln!("video {id}: {} in {:.1} s{playable}", state.state.as_str(), secs(last - received));
        for event in events.iter().filter(|e| e.kind == "stage_finished") {
            let took = event.data.as_ref().and_then(|d| d["secs"].as_f64()).unwrap_or(0.0);
            eprintln!("  {:<14} {took:6.1} s", event.stage.clone().unwrap_or_default());
        }
        for event in events.iter().filter(|e| e.kind == "dub_qa") {
            eprintln!("qa: {}", event.message);
        }
        for warning in &state.warnings {
            eprintln!("warning: {warning}");
        }
        if let Some(error) = &state.error {
            eprintln!("error: {error}");
        }
        let master = layout.master_playlist(&id);
        if master.is_file() {
            println!("{}", master.display());
        }
        for entry in std::fs::read_dir(layout.video_dir(&id).join("captions")).into_iter().flatten().flatten()
        {
            eprintln!("captions: {}", entry.path().display());
        }
        if state.state == VideoState::AwaitingReview {
            let waiting = events.iter().rev().find(|e| e.kind == "awaiting_review");
            let what = match waiting.and_then(|e| e.data.as_ref()).and_then(|d| d["review"].as_str()) {
                Some("translations") => "the translations wait",
                _ => "the transcript waits",
            };
            eprintln!(
                "awaiting review: {what} for a person. Run `babelcast serve --data-dir {}` and open /review/{id} (or make a review link: `babelcast videos review-link {id}`); the video is finished after the approval.",
                args.out.display()
            );
            return Ok(ExitCode::from(AWAITING_REVIEW));
        }
        let missing = pipeline.missing_languages(id.as_str()).await?;
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|l| format!("{} ({l})", l.name())).collect();
            eprintln!("missing: {} (see the warnings)", names.join(", "));
        }
        Ok(if state.state == VideoState::Failed {
            ExitCode::FAILURE
        } else if !missing.is_empty() {
            ExitCode::from(LANGUAGE_MISSING)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// `babelcast run`'s exit status when the video was published without a
/// language it was asked for (its translation or dub failed, or no engine
/// reaches it); the warnings say why.
pub const LANGUAGE_MISSING: u8 = 3;

/// `babelcast run --review`'s exit status when it stopped for the review.
pub const AWAITING_REVIEW: u8 = 4;
