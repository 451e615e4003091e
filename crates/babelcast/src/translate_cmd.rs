//! `babelcast translate`: subtitles in, translated subtitles out, for users who
//! need only the text. The same path as the pipeline's translate stage (cues
//! joined into sentences, the glossary kept, the text split back over the cue
//! times and set on lines by the caption rules), with no video and no database.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use babelcast_core::{CaptionProfile, Lang, SubtitleFormat, subtitle};
use babelcast_translate::Translator as _;
use clap::ValueEnum;

use crate::config::Config;

/// The subtitle formats written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// SubRip (`.srt`).
    Srt,
    /// WebVTT (`.vtt`).
    Vtt,
}

#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    /// The subtitle file: SRT or WebVTT, in UTF-8 (with or without a BOM),
    /// UTF-16 or a legacy encoding such as Windows-1252.
    file: PathBuf,
    /// The languages to translate into, e.g. `es,it`.
    #[arg(long, value_delimiter = ',', required = true)]
    to: Vec<Lang>,
    /// The file's language.
    #[arg(long)]
    from: Lang,
    /// A glossary: a JSON file of terms to keep and forced translations.
    #[arg(long)]
    glossary: Option<PathBuf>,
    /// The format to write [default: the input's].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The folder to write `<name>.<lang>.srt|vtt` into [default: the input's].
    #[arg(short, long)]
    out: Option<PathBuf>,
}

/// `babelcast translate`: writes one file per language and prints where, with
/// the engine and what a reviewer should look at. A language no installed
/// engine reaches fails the command before anything is written.
pub fn translate(config: &Config, args: TranslateArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let file = subtitle::file::read(&bytes).with_context(|| format!("{}", args.file.display()))?;
    let glossary = match &args.glossary {
        Some(path) => crate::config::read_glossary(path)?,
        None => Default::default(),
    };
    let engines = babelcast_pipeline::installed_translators(&config.pipeline(&config.server.data_dir));
    for &to in &args.to {
        anyhow::ensure!(to != args.from, "{to} is the file's language: nothing to translate");
        if engines.engine(args.from, to).is_none() {
            let reachable: Vec<String> = engines.targets(args.from).iter().map(|l| l.to_string()).collect();
            anyhow::bail!(
                "no installed engine translates {} to {to} (from {} it reaches: {}); an Apertium pair or a CTranslate2 model would",
                args.from,
                args.from,
                if reachable.is_empty() { "nothing".to_owned() } else { reachable.join(", ") }
            );
        }
    }
    let format = match args.format {
        Some(Format::Srt) => SubtitleFormat::Srt,
        Some(Format::Vtt) => SubtitleFormat::WebVtt,
        None => file.format,
    };
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => args.file.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    eprintln!(
        "read {} cues from {} ({}, {})",
        file.cues.len(),
        args.file.display(),
        file.format,
        file.encoding
    );
    for &to in &args.to {
        let done = babelcast_translate::translate_cues(
            &engines,
            args.from,
            to,
            &file.cues,
            &glossary,
            &CaptionProfile::default(),
        )
        .with_context(|| format!("translating into {to}"))?;
        let path = out_dir.join(output_name(&args.file, args.from, to, format));
        let text = match format {
            SubtitleFormat::Srt => subtitle::srt::write(&done.cues),
            SubtitleFormat::WebVtt => subtitle::vtt::write(&done.cues),
        };
        babelcast_store::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
        eprintln!(
            "{to}: {} cues by {}; {} with words left untranslated, {} caption rule warnings",
            done.cues.len(),
            engines.engine(args.from, to).unwrap_or_default(),
            done.untranslated.len(),
            done.warnings.len()
        );
        for warning in done.warnings.iter().take(5) {
            eprintln!("  {warning}");
        }
    }
    Ok(())
}

/// `talk.srt` → `talk.es.srt`; `talk.en.srt` (named by its language) → `talk.es.srt`.
fn output_name(input: &Path, from: Lang, to: Lang, format: SubtitleFormat) -> String {
    let stem =
        input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "subtitles".into());
    let stem = stem.strip_suffix(&format!(".{}", from.tag())).unwrap_or(&stem);
    let extension = match format {
        SubtitleFormat::Srt => "srt",
        SubtitleFormat::WebVtt => "vtt",
    };
    format!("{stem}.{}.{extension}", to.tag())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_output_after_the_input_and_its_language() {
        let (en, es): (Lang, Lang) = ("en".parse().expect("en"), "es".parse().expect("es"));
        assert_eq!(output_name(Path::new("a/talk.srt"), en, es, SubtitleFormat::Srt), "talk.es.srt");
        assert_eq!(output_name(Path::new("talk.en.srt"), en, es, SubtitleFormat::WebVtt), "talk.es.vtt");
        assert_eq!(output_name(Path::new("talk.fr.srt"), en, es, SubtitleFormat::Srt), "talk.fr.es.srt");
    }
}
