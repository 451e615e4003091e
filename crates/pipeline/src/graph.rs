//! The stage graph: which stages a video runs, after what, and the state it ends
//! in. [`plan`] is the one place that decides it; it is a pure function of what
//! is recorded about the video (its options, what the probe and the transcription
//! found, when the transcript was approved and last edited, and each job's state
//! and times), so the stage bodies only do their work and the decision has
//! table-driven tests. `Pipeline::settle` gathers the facts, calls it and applies
//! the plan.
//!
//! ```text
//! probe ─┬─ encode ──────────────┬─ captions
//!        └─ transcribe (audio) ──┘
//!             └─ [review] ─ translate-xx ─ [review_translations] ─ dub-xx   (each target)
//! ```
//!
//! With subtitles given for the transcript, `import` takes transcribe's place
//! (with or without audio): speech recognition does not run, unless the
//! subtitles are to be re-timed to the speech: then `import` follows
//! `transcribe`, whose words it matches the text to.
//!
//! An edit re-runs what depends on it: a source edit each translation (then, as
//! each translation changes, its dub); one language's edit only that dub.

use std::fmt;
use std::str::FromStr;

use babelcast_core::Lang;
use babelcast_jobs::{JobState, VideoState};

/// One stage of a video, as its job is named (`probe`, `translate-es`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Reads the media facts.
    Probe,
    /// Encodes the ladder and packages it.
    Encode,
    /// Speech to transcript and caption files.
    Transcribe,
    /// Subtitles the user gave to transcript and caption files, instead of
    /// [`Stage::Transcribe`].
    Import,
    /// Adds the caption tracks to the package.
    Captions,
    /// Translates the captions into one language.
    Translate(Lang),
    /// Dubs one language (its audio track and MP4).
    Dub(Lang),
}

impl Stage {
    /// The stage every video starts with.
    pub const FIRST: Stage = Stage::Probe;

    /// The kind of work, as workers choose it (`translate` for every language).
    pub fn kind(self) -> &'static str {
        use crate::stage;
        match self {
            Stage::Probe => stage::PROBE,
            Stage::Encode => stage::ENCODE,
            Stage::Transcribe => stage::TRANSCRIBE,
            Stage::Import => stage::IMPORT,
            Stage::Captions => stage::CAPTIONS,
            Stage::Translate(_) => stage::TRANSLATE,
            Stage::Dub(_) => stage::DUB,
        }
    }

    /// The target language of a per-language stage.
    pub fn language(self) -> Option<Lang> {
        match self {
            Stage::Translate(lang) | Stage::Dub(lang) => Some(lang),
            _ => None,
        }
    }

    /// Whether the video cannot be published without it.
    fn is_fatal(self) -> bool {
        matches!(self, Stage::Probe | Stage::Encode)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.language() {
            Some(lang) => write!(f, "{}-{}", self.kind(), lang.tag()),
            None => f.write_str(self.kind()),
        }
    }
}

/// A job name that is no stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?}")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(name: &str) -> Result<Stage, UnknownStage> {
        use crate::stage;
        let unknown = || UnknownStage(name.to_owned());
        Ok(match name {
            stage::PROBE => Stage::Probe,
            stage::ENCODE => Stage::Encode,
            stage::TRANSCRIBE => Stage::Transcribe,
            stage::IMPORT => Stage::Import,
            stage::CAPTIONS => Stage::Captions,
            _ => {
                let (kind, tag) = name.split_once('-').ok_or_else(unknown)?;
                let lang: Lang = tag.parse().map_err(|_| unknown())?;
                match kind {
                    stage::TRANSLATE => Stage::Translate(lang),
                    stage::DUB => Stage::Dub(lang),
                    _ => return Err(unknown()),
                }
            }
        })
    }
}

/// What is recorded about one of the video's jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts {
    /// Its stage.
    pub stage: Stage,
    /// Where it stands.
    pub state: JobState,
    /// When its current or last attempt started, Unix ms.
    pub started_ms: Option<i64>,
    /// When it finished, Unix ms.
    pub finished_ms: Option<i64>,
    /// Its last failure.
    pub last_error: Option<String>,
}

/// What the transcription (or the import of given subtitles) found.
#[derive(Debug, Clone, PartialEq)]
pub struct Spoken {
    /// The spoken language as Whisper named it (`en`; maybe one babelcast lacks).
    pub language: String,
    /// How many cues the transcript has.
    pub cues: usize,
}

/// Everything the plan depends on.
pub struct VideoFacts<'a> {
    /// The video's state now.
    pub state: VideoState,
    /// Whether it already carries warnings.
    pub warned: bool,
    /// The languages asked for.
    pub targets: &'a [Lang],
    /// Whether a person approves the transcript before translations start.
    pub review: bool,
    /// Whether the source has sound; `None` until the probe says.
    pub audio: Option<bool>,
    /// Whether the user gave subtitles for the transcript (then
    /// [`Stage::Import`] makes it, not speech recognition).
    pub given_transcript: bool,
    /// Whether the given subtitles are moved to the speech (recognised first).
    pub retime: bool,
    /// The transcription's result; `None` until it is known.
    pub spoken: Option<Spoken>,
    /// When the transcript was approved, Unix ms.
    pub approved_ms: Option<i64>,
    /// When the transcript's cues last changed after transcription, Unix ms.
    pub edited_ms: Option<i64>,
    /// Whether a person approves the translations before any dub.
    pub review_translations: bool,
    /// When the translations were approved, Unix ms.
    pub translations_approved_ms: Option<i64>,
    /// When a reviewer last changed each language's cues, Unix ms.
    pub translation_edits: &'a [(Lang, i64)],
    /// The video's jobs.
    pub jobs: &'a [JobFacts],
    /// Whether an installed engine translates the first language into the second.
    pub can_translate: &'a dyn Fn(Lang, Lang) -> bool,
}

impl fmt::Debug for VideoFacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoFacts")
            .field("state", &self.state)
            .field("warned", &self.warned)
            .field("targets", &self.targets)
            .field("review", &self.review)
            .field("audio", &self.audio)
            .field("given_transcript", &self.given_transcript)
            .field("retime", &self.retime)
            .field("spoken", &self.spoken)
            .field("approved_ms", &self.approved_ms)
            .field("edited_ms", &self.edited_ms)
            .field("review_translations", &self.review_translations)
            .field("translations_approved_ms", &self.translations_approved_ms)
            .field("translation_edits", &self.translation_edits)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

/// A warning to record, with the stage it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The stage it is about.
    pub stage: Option<Stage>,
    /// What was left out and why.
    pub message: String,
}

/// What to do next.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Stages to queue for the first time.
    pub queue: Vec<Stage>,
    /// Finished or dead stages to run again (their input changed).
    pub rerun: Vec<Stage>,
    /// The video's new state, if it changes.
    pub state: Option<VideoState>,
    /// Why it failed (with `state` failed).
    pub error: Option<String>,
    /// Warnings to record (the database keeps each text once).
    pub warnings: Vec<Warning>,
    /// What a person is asked to review, while the video waits for it.
    pub review: Option<Review>,
}

/// What a video waits for a person to approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// The transcript, before any translation.
    Transcript,
    /// The translations, before any dub.
    Translations,
}

impl Plan {
    fn warn(&mut self, stage: Option<Stage>, message: String) {
        self.warnings.push(Warning { stage, message });
    }
}

/// The warning when the source has no sound.
pub const NO_AUDIO: &str = "the source has no audio stream: no captions";

/// Decides what happens next to a video; see the module header.
pub fn plan(facts: &VideoFacts<'_>) -> Plan {
    let mut plan = Plan::default();
    let job = |stage: Stage| facts.jobs.iter().find(|j| j.stage == stage);
    let done = |stage: Stage| job(stage).is_some_and(|j| j.state == JobState::Done);
    let over = |j: &JobFacts| matches!(j.state, JobState::Done | JobState::Dead);
    let next = |plan: &mut Plan, stage: Stage| {
        if job(stage).is_none() {
            plan.queue.push(stage);
        }
    };

    // An operator stopped it: nothing more starts, whatever is edited.
    if facts.state == VideoState::Cancelled {
        return plan;
    }
    let busy = facts.jobs.iter().any(|j| matches!(j.state, JobState::Queued | JobState::Running));
    // Without a probe or a package nothing can be published: nothing more starts.
    if let Some(fatal) = facts.jobs.iter().find(|j| j.stage.is_fatal() && j.state == JobState::Dead) {
        if !busy && facts.state != VideoState::Failed {
            plan.state = Some(VideoState::Failed);
            plan.error = Some(fatal.last_error.clone().unwrap_or_else(|| format!("{} failed", fatal.stage)));
        }
        return plan;
    }
    if facts.jobs.is_empty() {
        next(&mut plan, Stage::FIRST);
    }
    if done(Stage::Probe) && facts.audio.is_none() {
        // Its facts are not readable yet: nothing can be decided.
        return plan;
    }
    // The stage that makes the transcript.
    let transcript = if facts.given_transcript { Stage::Import } else { Stage::Transcribe };
    if done(Stage::Probe)
        && let Some(audio) = facts.audio
    {
        next(&mut plan, Stage::Encode);
        // Speech is recognised unless subtitles were given and stay as timed.
        let hear = audio && (!facts.given_transcript || facts.retime);
        if hear {
            next(&mut plan, Stage::Transcribe);
        }
        if facts.given_transcript && (!hear || job(Stage::Transcribe).is_some_and(over)) {
            next(&mut plan, Stage::Import);
        }
        if !audio && !facts.given_transcript {
            plan.warn(Some(Stage::Probe), NO_AUDIO.to_owned());
        }
    }
    if done(Stage::Encode) && done(transcript) {
        next(&mut plan, Stage::Captions);
    }

    if done(transcript) && facts.spoken.is_none() {
        // Its result is not recorded yet (the worker records it, then settles).
        return plan;
    }
    let mut reviewing = false;
    if done(transcript)
        && let Some(spoken) = &facts.spoken
    {
        reviewing = facts.review && facts.approved_ms.is_none();
        if !reviewing && !facts.targets.is_empty() {
            translations(facts, transcript, spoken, &mut plan);
        }
    }
    // With review_translations, the dubs wait until every translation has ended
    // and a person approved them.
    let translating = facts.targets.iter().any(|&to| {
        job(Stage::Translate(to)).is_some_and(|j| matches!(j.state, JobState::Queued | JobState::Running))
    }) || plan.queue.iter().chain(&plan.rerun).any(|s| matches!(s, Stage::Translate(_)));
    let gated = facts.review_translations && facts.translations_approved_ms.is_none();
    let translations_waiting =
        gated && !reviewing && !translating && facts.targets.iter().any(|&to| done(Stage::Translate(to)));
    for &to in facts.targets {
        let Some(translated) = job(Stage::Translate(to)).filter(|j| j.state == JobState::Done) else {
            continue;
        };
        if gated {
            continue;
        }
        let edited = facts.translation_edits.iter().filter(|(lang, _)| *lang == to).map(|&(_, at)| at).max();
        match job(Stage::Dub(to)) {
            None => plan.queue.push(Stage::Dub(to)),
            // The translation changed (by the engine or a reviewer) after this dub
            // began: dub it again.
            Some(dub)
                if over(dub) && (translated.finished_ms > dub.started_ms || edited > dub.started_ms) =>
            {
                plan.rerun.push(Stage::Dub(to))
            }
            Some(_) => {}
        }
    }
    let waiting_for = if reviewing {
        Some(Review::Transcript)
    } else if translations_waiting {
        Some(Review::Translations)
    } else {
        None
    };

    if busy || !plan.queue.is_empty() || !plan.rerun.is_empty() {
        if waiting_for.is_some() && facts.state == VideoState::Processing {
            plan.state = Some(VideoState::AwaitingReview);
            plan.review = waiting_for;
        } else if facts.state.is_final() {
            plan.state = Some(VideoState::Processing);
        }
        return plan;
    }
    if waiting_for.is_some() {
        if facts.state != VideoState::AwaitingReview {
            plan.state = Some(VideoState::AwaitingReview);
            plan.review = waiting_for;
        }
        return plan;
    }
    for job in facts.jobs.iter().filter(|j| j.state == JobState::Dead) {
        let why = job.last_error.as_deref().unwrap_or("no error recorded");
        let message = match job.stage {
            Stage::Translate(lang) => {
                format!("{} ({lang}) left out: {} failed: {why}", lang.name(), job.stage)
            }
            Stage::Dub(lang) => {
                format!("{} ({lang}) has captions but no dub: {} failed: {why}", lang.name(), job.stage)
            }
            Stage::Transcribe if facts.given_transcript => {
                format!("the given subtitles keep their times: {} failed: {why}", job.stage)
            }
            stage => format!("published without captions: {stage} failed: {why}"),
        };
        plan.warn(Some(job.stage), message);
    }
    let state = if facts.warned || !plan.warnings.is_empty() {
        VideoState::CompletedWithWarnings
    } else {
        VideoState::Completed
    };
    if facts.state != state {
        plan.state = Some(state);
    }
    plan
}

/// Queues (or re-runs, after an edit) the translation of every target that can
/// be reached from the spoken language, and says why the others are left out.
fn translations(facts: &VideoFacts<'_>, transcript: Stage, spoken: &Spoken, plan: &mut Plan) {
    if spoken.cues == 0 {
        plan.warn(Some(transcript), "nothing to translate or dub: the transcript is empty".into());
        return;
    }
    let Some(from) = Lang::from_metadata(&spoken.language) else {
        plan.warn(
            Some(transcript),
            format!(
                "nothing translated: babelcast cannot translate from the spoken language {:?}",
                spoken.language
            ),
        );
        return;
    };
    for &to in facts.targets {
        let stage = Stage::Translate(to);
        if to == from {
            plan.warn(Some(stage), format!("{} ({to}) left out: it is the spoken language", to.name()));
        } else if !(facts.can_translate)(from, to) {
            plan.warn(
                Some(stage),
                format!(
                    "{} ({to}) left out: no installed engine translates {from} to {to} \
                     (an Apertium pair or a CTranslate2 model would)",
                    to.name()
                ),
            );
        } else {
            match facts.jobs.iter().find(|j| j.stage == stage) {
                None => plan.queue.push(stage),
                Some(j)
                    if matches!(j.state, JobState::Done | JobState::Dead)
                        && facts.edited_ms.is_some_and(|edited| j.started_ms.is_none_or(|s| s < edited)) =>
                {
                    plan.rerun.push(stage);
                }
                Some(_) => {}
            }
        }
    }
}

/// The asked-for languages a video ended without (no finished dub).
pub fn missing_languages(targets: &[Lang], jobs: &[JobFacts]) -> Vec<Lang> {
    targets
        .iter()
        .copied()
        .filter(|&to| !jobs.iter().any(|j| j.stage == Stage::Dub(to) && j.state == JobState::Done))
        .collect()
}

#[cfg(test)]
mod tests;
