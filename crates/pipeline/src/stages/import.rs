//! The import stage: subtitles the user gave become the transcript, instead of
//! speech recognition. Cues that keep the caption rules are kept as written;
//! those that break them are set again (see `captions::refit`), and an event
//! says which. With `retime`, the cues are first moved to where their words are
//! spoken in what the transcribe stage heard (`captions::retime`; a plain
//! script is placed and set into cues the same way), the transcript records
//! each cue's shift, and the cues whose words were not found keep their times
//! with a warning. Without word times from speech, words are timed by their
//! share of their cue.

use std::path::PathBuf;

use babelcast_core::{CaptionProfile, Lang, Millis, Transcript, VideoId, captions};
use babelcast_jobs::Video;
use babelcast_store::Layout;
use serde_json::json;

use super::{StageDone, StageFailure};
use crate::graph::Stage;
use crate::{GivenText, Pipeline};

/// Where the transcribe stage leaves what it heard when subtitles were given
/// (they are re-timed to it; it is never published).
pub(super) fn recognized(layout: &Layout, id: &VideoId) -> PathBuf {
    layout.video_dir(id).join("recognized.json")
}

impl Pipeline {
    pub(super) async fn import(&self, video: &Video) -> Result<StageDone, StageFailure> {
        let id = Self::id_of(video)?;
        let options = Self::options(video);
        let stage = Stage::Import.to_string();
        let Some(given) = options.transcript.clone() else {
            return Err(StageFailure::permanent(
                "no_transcript_given",
                "the video was not given subtitles for its transcript: nothing to import",
            ));
        };
        let profile = CaptionProfile::default();
        let heard: Option<Transcript> = if options.retime {
            std::fs::read(recognized(&self.layout(), &id)).ok().and_then(|b| serde_json::from_slice(&b).ok())
        } else {
            None
        };
        if let Some(heard) = &heard
            && Lang::from_metadata(&heard.language) != Some(given.language)
        {
            return Err(StageFailure::permanent(
                "subtitles_wrong_language",
                format!(
                    "the subtitles are in {} ({}) but the speech is in {:?}, as detected: give subtitles in the spoken language, or say their language",
                    given.language.name(),
                    given.language,
                    heard.language
                ),
            ));
        }
        if options.retime && heard.is_none() {
            self.warn(
                &video.id,
                Some(&stage),
                "the given subtitles keep their times: no speech was recognised to re-time them to",
            )
            .await?;
        }
        // The cues, where each given cue moved, and the given words' times if
        // they were placed on the speech.
        let (placed, shifts, words, given_cues) = match (&given.text, &heard) {
            (GivenText::Cues(cues), Some(heard)) => {
                let retimed = captions::retime(cues, &heard.words, &profile);
                (retimed.cues, retimed.shifts, Some(retimed.words), cues.len())
            }
            (GivenText::Cues(cues), None) => (cues.clone(), Vec::new(), None, cues.len()),
            (GivenText::Script(text), Some(heard)) => {
                let (cues, words) = captions::time_script(text, &heard.words, &profile);
                (cues, Vec::new(), Some(words), 0)
            }
            (GivenText::Script(_), None) => {
                return Err(StageFailure::permanent(
                    "script_not_placed",
                    "a plain script has no times and no speech was recognised to place it: give SRT or WebVTT, or a video with speech",
                ));
            }
        };
        let lost: Vec<&captions::CueShift> = shifts.iter().filter(|s| !s.found).collect();
        if !lost.is_empty() {
            let GivenText::Cues(cues) = &given.text else { unreachable!("only cues have shifts") };
            let shown: Vec<String> = lost
                .iter()
                .take(3)
                .map(|s| format!("cue {} {:?}", s.cue + 1, excerpt(&cues[s.cue].text)))
                .collect();
            let message = format!(
                "{} of the {} given cues were not found in the speech and keep their times: {}{}",
                lost.len(),
                cues.len(),
                shown.join(", "),
                if lost.len() > 3 { ", …" } else { "" }
            );
            self.warn(&video.id, Some(&stage), &message).await?;
        }
        let (cues, refitted) = captions::refit(&placed, &profile);
        if !refitted.is_empty() {
            let message = format!(
                "{} of the {} cues broke the caption rules and were set again ({})",
                refitted.len(),
                placed.len(),
                refitted
                    .iter()
                    .take(5)
                    .map(|r| format!(
                        "cue {}: {}",
                        r.cue + 1,
                        r.broke.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                    .chain((refitted.len() > 5).then(|| "…".to_owned()))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            self.db
                .add_event(
                    &video.id,
                    "transcript_refitted",
                    Some(&stage),
                    &message,
                    Some(json!({ "cues": refitted })),
                )
                .await?;
        }
        let duration = self
            .read_facts(&id)?
            .duration_secs
            .map(Millis::from_secs_f64)
            .unwrap_or_else(|| cues.last().map(|c| c.end).unwrap_or_default());
        // Placed on the speech, or else timed by their share of their cue.
        let words = words.unwrap_or_else(|| cues.iter().flat_map(captions::timed_words).collect());
        let transcript = Transcript {
            language: given.language.tag().to_owned(),
            model: format!("given: {}", given.source),
            duration,
            words,
            cues,
            retimed: shifts.clone(),
        };
        let outputs = self.publish_transcript(video, &id, &transcript, &options, Stage::Import).await?;
        let mut moved: Vec<i64> = shifts.iter().filter(|s| s.found).map(|s| s.shift_ms).collect();
        moved.sort_unstable();
        Ok(StageDone {
            cached: false,
            data: json!({
                "language": transcript.language, "source": given.source, "given_cues": given_cues,
                "cues": transcript.cues.len(), "refitted": refitted.len(), "words": transcript.words.len(),
                "retimed": heard.is_some(), "not_found": lost.len(),
                "median_shift_ms": moved.get(moved.len() / 2), "outputs": outputs,
            }),
        })
    }
}

/// The start of a cue's text for a message.
fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}
