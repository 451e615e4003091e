//! The server's secrets and credentials: the admin token and the signing key
//! (configured, or generated into the data folder on first start), `babelcast
//! keys` (API keys on the server's database) and `babelcast signing-key rotate`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use babelcast_core::Secret;
use babelcast_core::secret::random_hex;
use babelcast_jobs::Db;
use babelcast_server::{ServerConfig, Signer};

use crate::config::Config;

/// `babelcast keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysAction {
    /// Create an API key; prints it once (only its hash is stored).
    Create {
        /// What it is for, e.g. "ingest bot".
        name: String,
        /// Its scopes: upload, read, review, metrics, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// List the keys (never their secrets), revoked ones too.
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (the part after `bk_`, before the second `_`).
        id: String,
    },
}

/// `babelcast signing-key`.
#[derive(Debug, clap::Subcommand)]
pub enum SigningKeyAction {
    /// Make a new signing key; the old one keeps verifying the links and playback
    /// URLs it signed for `server.signing_key_grace_secs`. Restart the servers.
    Rotate,
}

/// Reads a secret from `path`, or creates it with `len` random bytes from the
/// operating system (hex), 0600. Returns it and whether it was created.
fn secret_file(path: &Path, len: usize) -> anyhow::Result<(Secret, bool)> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = text.trim();
        if !text.is_empty() {
            return Ok((Secret::new(text), false));
        }
    }
    let secret = random_hex(len).context("the operating system's random generator failed")?;
    babelcast_store::write_atomic_mode(path, secret.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((Secret::new(secret), true))
}

/// `<data_dir>/signing-key.retired`: one `KEY UNTIL` line per retired key.
fn retired_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("signing-key.retired")
}

/// The signer: the configured or generated key, and the retired keys still in
/// their grace period.
fn signer(config: &Config, data_dir: &Path) -> anyhow::Result<Signer> {
    let key = match &config.server.signing_key {
        Some(key) => key.clone(),
        None => secret_file(&data_dir.join("signing-key"), 32)?.0,
    };
    let mut signer = Signer::new(key.expose().as_bytes().to_vec());
    let retired = std::fs::read_to_string(retired_file(data_dir)).unwrap_or_default();
    for line in retired.lines() {
        if let Some((key, until)) = line.split_once(' ')
            && let Ok(until) = until.trim().parse::<i64>()
        {
            signer = signer.with_retired(key.as_bytes().to_vec(), until);
        }
    }
    Ok(signer)
}

/// What `serve` runs its HTTP side with. Says where the admin token was saved
/// when it was generated now; the token itself is never printed (a terminal's
/// scroll-back and a service's journal are logs too).
pub fn server_config(config: &Config, data_dir: &Path) -> anyhow::Result<ServerConfig> {
    let token = match &config.server.token {
        Some(token) => token.clone(),
        None => {
            let path = data_dir.join("api-token");
            let (token, created) = secret_file(&path, 24)?;
            if created {
                println!(
                    "generated the admin token into {} (readable by this user only; `babelcast videos` uses it by default)",
                    path.display()
                );
            }
            token
        }
    };
    let section = &config.server;
    Ok(ServerConfig {
        max_upload_bytes: section.max_upload_bytes,
        playback_ttl: Duration::from_secs(section.playback_ttl_secs),
        link_ttl: Duration::from_secs(section.link_ttl_secs),
        max_link_ttl: Duration::from_secs(section.max_link_ttl_secs.max(section.link_ttl_secs)),
        cors_origins: section.cors_origins.clone(),
        ..ServerConfig::new(token, signer(config, data_dir)?)
    })
}

/// The server's database: `server.database_url`, or the SQLite file in the data
/// folder.
pub(crate) async fn open_db(config: &Config, data_dir: &Path) -> anyhow::Result<Db> {
    Ok(match &config.server.database_url {
        Some(url) => Db::connect(url.expose()).await?,
        None => Db::open(&data_dir.join("babelcast.db")).await?,
    })
}

/// `babelcast keys ...`, on the database `serve` uses.
pub async fn keys(config: &Config, data_dir: &Path, action: KeysAction) -> anyhow::Result<ExitCode> {
    let db = open_db(config, data_dir).await?;
    match action {
        KeysAction::Create { name, scopes } => {
            let key = babelcast_server::new_key(&db, &name, &scopes).await?;
            println!("created key {} ({}); it is shown this once:", key.id, key.scopes.join(","));
            println!("{}", key.key);
        }
        KeysAction::List => {
            for key in db.api_keys().await? {
                let state = if key.revoked_ms.is_some() { "revoked" } else { "active" };
                println!("{:<18} {:<8} {:<28} {}", key.id, state, key.scopes.join(","), key.name);
            }
        }
        KeysAction::Revoke { id } => {
            if !db.revoke_api_key(&id).await? {
                anyhow::bail!("no active key {id} (babelcast keys list shows them)");
            }
            println!("revoked key {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `babelcast signing-key rotate`.
pub fn signing_key(config: &Config, data_dir: &Path, action: SigningKeyAction) -> anyhow::Result<ExitCode> {
    let SigningKeyAction::Rotate = action;
    if config.server.signing_key.is_some() {
        anyhow::bail!(
            "server.signing_key is set in the configuration: change it there (keeping the old \
             value's links valid is not possible that way)"
        );
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join("signing-key");
    let (old, _) = secret_file(&path, 32)?;
    let now = babelcast_jobs::now_ms() / 1000;
    let until = now + config.server.signing_key_grace_secs as i64;
    // Keys whose grace is over are dropped; the old current key joins.
    let mut kept: Vec<String> = std::fs::read_to_string(retired_file(data_dir))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split_once(' ').and_then(|(_, u)| u.trim().parse::<i64>().ok()).is_some_and(|u| u >= now)
        })
        .map(str::to_owned)
        .collect();
    kept.push(format!("{} {until}", old.expose()));
    babelcast_store::write_atomic_mode(&retired_file(data_dir), (kept.join("\n") + "\n").as_bytes(), 0o600)?;
    let new = random_hex(32).context("the operating system's random generator failed")?;
    babelcast_store::write_atomic_mode(&path, new.as_bytes(), 0o600)?;
    println!(
        "a new signing key is in {}; links signed with the old one verify until {} (Unix time). \
         Restart the servers to use it.",
        path.display(),
        until
    );
    Ok(ExitCode::SUCCESS)
}
