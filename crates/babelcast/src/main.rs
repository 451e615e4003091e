//! `babelcast`: caption, translate and dub a video into one adaptive HLS package,
//! on your own machines.

mod access_cmd;
mod config;
mod models_cmd;
mod package_cmd;
mod serve_cmd;
mod transcribe_cmd;
mod translate_cmd;
mod videos_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use babelcast_media::Prober;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, FlagOverrides};

/// Caption, translate and dub videos into one adaptive HLS package, on your own machines.
///
/// Configuration is layered: built-in defaults, then the config file (--config,
/// BABELCAST_CONFIG, or ./babelcast.toml), then BABELCAST_* environment variables
/// (BABELCAST_MEDIA__PROBE_TIMEOUT_SECS=30), then flags. `babelcast config` prints
/// the result.
#[derive(Debug, Parser)]
#[command(name = "babelcast", version, max_term_width = 100)]
struct Cli {
    /// More log output on stderr: -v for debug, -vv for trace. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// The config file to read.
    #[arg(long, env = "BABELCAST_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Where models live (overrides `models_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    models_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what a media file holds (container, duration, streams) as JSON.
    Probe {
        /// The audio or video file.
        file: PathBuf,
    },
    /// List the models, their sizes and whether each verifies; or fetch them.
    ///
    /// Exits non-zero when a model is missing or damaged.
    Models {
        #[command(subcommand)]
        action: Option<models_cmd::Action>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Transcribe a media file into captions (WebVTT, SRT, JSON transcript).
    ///
    /// Shows a progress bar on the audio done and ends with a summary: language,
    /// duration, words, cues and real-time factor.
    Transcribe(transcribe_cmd::TranscribeArgs),
    /// Translate a subtitle file (SRT or WebVTT) into other languages: one
    /// `<name>.<lang>.srt|vtt` per language, each cue at its original time, its
    /// text set on lines by the caption rules.
    ///
    /// Prints each file written; fails before writing anything when no
    /// installed engine reaches a language asked for.
    Translate(translate_cmd::TranslateArgs),
    /// Encode a video into an HLS package: the bitrate ladder from one decode, the
    /// original audio, and optional caption and audio tracks.
    ///
    /// Rungs above the source's height are left out; keyframes are aligned at every
    /// segment so players switch rungs anywhere. Prints the master playlist's path.
    Package(package_cmd::PackageArgs),
    /// Add caption or audio tracks to an existing HLS package, without re-encoding
    /// the video.
    PackageAdd(package_cmd::PackageAddArgs),
    /// Write an MP4 of a video with chosen audio tracks and soft (or burned-in)
    /// subtitles, each tagged with its language.
    Mp4(package_cmd::Mp4Args),
    /// Run the service: the HTTP API, the player page and a pool of workers, on
    /// the data folder and its database (SQLite, or PostgreSQL by
    /// `server.database_url`).
    ///
    /// Prints the address; on first start also the generated API token. Stops on
    /// Ctrl-C or SIGTERM after the running stages finish.
    Serve(serve_cmd::ServeArgs),
    /// Run the whole pipeline on one file, here and now, with a progress bar per
    /// stage: probe, encode (ladder + HLS) in parallel with transcription, then the
    /// captions into the package, and with --to each translation and dub.
    /// Prints the master playlist's path.
    ///
    /// Exit status: 0 done, 1 failed, 3 published without a language asked for
    /// (the warnings say why).
    Run(serve_cmd::RunArgs),
    /// Run workers only: claim stages from the shared database and run them, with
    /// no HTTP. Start any number, on any machines that share the database and the
    /// data folder; `--stages` limits what one takes (e.g. speech-only machines).
    ///
    /// Stops on Ctrl-C or SIGTERM after the running stages finish; a killed
    /// worker's stages are taken over by others when their leases run out.
    Worker(serve_cmd::WorkerArgs),
    /// List the voices dubbing can use, per language, and which one each language
    /// gets.
    Voices,
    /// Print the effective configuration as TOML (secrets shown as [redacted]).
    Config,
    /// Create, list and revoke API keys (with scopes: upload, read, review,
    /// metrics, admin) on the server's database.
    Keys {
        #[command(subcommand)]
        action: access_cmd::KeysAction,
        /// The server's data folder [config: server.data_dir].
        #[arg(long, value_name = "DIR", global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Manage the videos of a running server: upload, list, show, wait, approve,
    /// review-link, download, retry, cancel, delete.
    ///
    /// The server's URL is `client.url` (default: http:// and `server.listen`),
    /// the key `client.key`, best given as BABELCAST_CLIENT__KEY (default: the
    /// admin token in `<server.data_dir>/api-token`, when this machine runs the
    /// server). Errors print the server's message.
    Videos {
        #[command(subcommand)]
        action: videos_cmd::VideosAction,
    },
    /// Rotate the key playback URLs and per-video links are signed with.
    SigningKey {
        #[command(subcommand)]
        action: access_cmd::SigningKeyAction,
        /// The server's data folder [config: server.data_dir].
        #[arg(long, value_name = "DIR", global = true)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, matches!(cli.command, Command::Serve(_) | Command::Worker(_)));
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One line: the error and its causes, joined.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8, serving: bool) {
    let default = match verbose {
        // A server logs what it does; a command's own output says enough.
        0 if serving => "warn,babelcast_pipeline=info,babelcast_server=info",
        0 => "warn",
        1 => {
            "warn,babelcast=debug,babelcast_process=debug,babelcast_media=debug,babelcast_models=debug,babelcast_pipeline=debug,babelcast_server=debug"
        }
        _ => "debug,babelcast=trace,babelcast_process=trace,babelcast_media=trace,babelcast_models=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let flags = FlagOverrides { models_dir: cli.models_dir };
    let config = Config::load(cli.config.as_deref(), &flags)?;
    tracing::debug!(?config, "configuration");
    let runtime = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    match cli.command {
        Command::Probe { file } => {
            let prober = Prober::new(config.ffprobe(), config.probe_timeout());
            let facts = runtime.block_on(prober.probe(&file))?;
            println!("{}", serde_json::to_string_pretty(&facts)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { action, json } => runtime.block_on(models_cmd::run(&config, action, json)),
        Command::Transcribe(args) => {
            transcribe_cmd::run(&config, args, &runtime)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Package(args) => {
            package_cmd::package(&config, args, &runtime)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::PackageAdd(args) => {
            package_cmd::package_add(&config, args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mp4(args) => {
            package_cmd::mp4(&config, args, &runtime)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve_cmd::serve(&config, args, &runtime),
        Command::Run(args) => serve_cmd::run(&config, args, &runtime),
        Command::Worker(args) => serve_cmd::worker(&config, args, &runtime),
        Command::Translate(args) => {
            translate_cmd::translate(&config, args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Voices => {
            let installed = babelcast_voice::Espeak::list(&babelcast_process::Program::espeak_ng())?;
            println!("{:<4} {:<12} {:<24} installed espeak-ng voices", "lang", "name", "dub voice");
            for lang in babelcast_core::Lang::all() {
                let voices: Vec<&str> = installed
                    .iter()
                    .filter(|(code, _)| code.split('-').next() == Some(lang.tag()))
                    .map(|(_, name)| name.as_str())
                    .collect();
                let piper = babelcast_pipeline::piper_model(&config.models_dir, lang)
                    .and_then(|p| p.file_stem().map(|s| format!("piper:{}", s.to_string_lossy())));
                let chosen = match piper {
                    Some(piper) => piper,
                    None if voices.is_empty() => "none".to_owned(),
                    None => format!("espeak-ng:{}", lang.tag()),
                };
                println!("{:<4} {:<12} {:<24} {}", lang.tag(), lang.name(), chosen, voices.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { action, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| config.server.data_dir.clone());
            runtime.block_on(access_cmd::keys(&config, &data_dir, action))
        }
        Command::Videos { action } => runtime.block_on(videos_cmd::run(&config, action)),
        Command::SigningKey { action, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| config.server.data_dir.clone());
            access_cmd::signing_key(&config, &data_dir, action)
        }
    }
}
