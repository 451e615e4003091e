//! The stage graph, case by case: each row is a video's recorded facts and the
//! plan they must give.

use super::*;
use JobState::{Dead, Done, Queued, Running};

fn lang(tag: &str) -> Lang {
    tag.parse().expect("lang")
}

fn job(stage: Stage, state: JobState, started: i64, finished: i64) -> JobFacts {
    let over = matches!(state, Done | Dead);
    JobFacts {
        stage,
        state,
        started_ms: (started > 0).then_some(started),
        finished_ms: (over && finished > 0).then_some(finished),
        last_error: (state == Dead).then(|| format!("{stage} broke")),
    }
}

/// A video with targets es and it, spoken English, no review; English to Spanish
/// and to Italian installed, nothing else.
struct Case {
    state: VideoState,
    warned: bool,
    targets: Vec<Lang>,
    review: bool,
    audio: Option<bool>,
    given_transcript: bool,
    retime: bool,
    spoken: Option<Spoken>,
    approved_ms: Option<i64>,
    edited_ms: Option<i64>,
    review_translations: bool,
    translations_approved_ms: Option<i64>,
    translation_edits: Vec<(Lang, i64)>,
    jobs: Vec<JobFacts>,
}

impl Case {
    fn new() -> Case {
        Case {
            state: VideoState::Processing,
            warned: false,
            targets: vec![lang("es"), lang("it")],
            review: false,
            audio: Some(true),
            given_transcript: false,
            retime: false,
            spoken: Some(Spoken { language: "en".into(), cues: 12 }),
            approved_ms: None,
            edited_ms: None,
            review_translations: false,
            translations_approved_ms: None,
            translation_edits: Vec::new(),
            jobs: Vec::new(),
        }
    }

    fn jobs(mut self, jobs: &[(Stage, JobState)]) -> Case {
        // Each job started and finished after the one before it.
        self.jobs = jobs
            .iter()
            .enumerate()
            .map(|(n, &(s, st))| job(s, st, 10 * n as i64 + 10, 10 * n as i64 + 15))
            .collect();
        self
    }

    fn plan(&self) -> Plan {
        let can = |from: Lang, to: Lang| from == lang("en") && (to == lang("es") || to == lang("it"));
        plan(&VideoFacts {
            state: self.state,
            warned: self.warned,
            targets: &self.targets,
            review: self.review,
            audio: self.audio,
            given_transcript: self.given_transcript,
            retime: self.retime,
            spoken: self.spoken.clone(),
            approved_ms: self.approved_ms,
            edited_ms: self.edited_ms,
            review_translations: self.review_translations,
            translations_approved_ms: self.translations_approved_ms,
            translation_edits: &self.translation_edits,
            jobs: &self.jobs,
            can_translate: &can,
        })
    }
}

use Stage::{Captions, Dub, Encode, Import, Probe, Transcribe, Translate};

/// Every stage of a full run with targets es and it, done.
fn all_done() -> Vec<(Stage, JobState)> {
    let (es, it) = (lang("es"), lang("it"));
    [Probe, Encode, Transcribe, Captions, Translate(es), Translate(it), Dub(es), Dub(it)]
        .into_iter()
        .map(|s| (s, Done))
        .collect()
}

fn with(mut jobs: Vec<(Stage, JobState)>, stage: Stage, state: JobState) -> Vec<(Stage, JobState)> {
    jobs.iter_mut().filter(|(s, _)| *s == stage).for_each(|j| j.1 = state);
    jobs
}

#[test]
fn stages_are_named_as_their_jobs_and_read_back() {
    for stage in [Probe, Encode, Transcribe, Import, Captions, Translate(lang("es")), Dub(lang("pt"))] {
        assert_eq!(stage.to_string().parse::<Stage>(), Ok(stage));
    }
    assert_eq!(Translate(lang("es")).to_string(), "translate-es");
    assert_eq!(Dub(lang("es")).kind(), "dub");
    for bad in ["dub", "dub-xx", "translate-", "mix-es", "probe-es", ""] {
        assert_eq!(bad.parse::<Stage>(), Err(UnknownStage(bad.into())), "{bad}");
    }
}

#[test]
fn each_stage_is_queued_after_what_it_needs() {
    let (es, it) = (lang("es"), lang("it"));
    type Row = (&'static str, Vec<(Stage, JobState)>, Vec<Stage>);
    let rows: Vec<Row> = vec![
        ("a new video is probed", vec![], vec![Probe]),
        ("nothing while the probe runs", vec![(Probe, Running)], vec![]),
        ("after the probe: encode and transcribe", vec![(Probe, Done)], vec![Encode, Transcribe]),
        (
            "after the transcription: both translations",
            vec![(Probe, Done), (Encode, Running), (Transcribe, Done)],
            vec![Translate(es), Translate(it)],
        ),
        (
            "captions once the package and the transcript exist",
            vec![
                (Probe, Done),
                (Encode, Done),
                (Transcribe, Done),
                (Translate(es), Queued),
                (Translate(it), Queued),
            ],
            vec![Captions],
        ),
        (
            "each dub after its own translation",
            vec![
                (Probe, Done),
                (Encode, Done),
                (Transcribe, Done),
                (Captions, Done),
                (Translate(es), Done),
                (Translate(it), Running),
            ],
            vec![Dub(es)],
        ),
        ("nothing left to queue", all_done(), vec![]),
    ];
    for (what, jobs, queue) in rows {
        let plan = Case::new().jobs(&jobs).plan();
        assert_eq!(plan.queue, queue, "{what}");
        assert!(plan.rerun.is_empty() && plan.warnings.is_empty(), "{what}: {plan:?}");
    }
}

#[test]
fn the_final_state_follows_from_what_died() {
    let (es, it) = (lang("es"), lang("it"));
    let rows: Vec<(Stage, VideoState, Option<&str>)> = vec![
        (Probe, VideoState::Failed, None),
        (Encode, VideoState::Failed, None),
        (
            Transcribe,
            VideoState::CompletedWithWarnings,
            Some("published without captions: transcribe failed"),
        ),
        (Captions, VideoState::CompletedWithWarnings, Some("published without captions: captions failed")),
        (
            Translate(es),
            VideoState::CompletedWithWarnings,
            Some("Español (es) left out: translate-es failed"),
        ),
        (
            Dub(es),
            VideoState::CompletedWithWarnings,
            Some("Español (es) has captions but no dub: dub-es failed"),
        ),
        (
            Translate(it),
            VideoState::CompletedWithWarnings,
            Some("Italiano (it) left out: translate-it failed"),
        ),
        (Dub(it), VideoState::CompletedWithWarnings, Some("Italiano (it) has captions but no dub")),
    ];
    for (stage, state, warning) in rows {
        // The stages that could not run after the dead one are absent.
        let jobs: Vec<(Stage, JobState)> = match stage {
            Probe => vec![(Probe, Dead)],
            Encode => vec![(Probe, Done), (Encode, Dead), (Transcribe, Done)],
            Transcribe => vec![(Probe, Done), (Encode, Done), (Transcribe, Dead)],
            Translate(l) => all_done()
                .into_iter()
                .filter(|(s, _)| *s != Dub(l))
                .map(|(s, st)| (s, if s == stage { Dead } else { st }))
                .collect(),
            _ => with(all_done(), stage, Dead),
        };
        let plan = Case::new().jobs(&jobs).plan();
        assert_eq!(plan.state, Some(state), "{stage}: {plan:?}");
        assert!(plan.queue.is_empty() && plan.rerun.is_empty(), "{stage}: {plan:?}");
        match warning {
            Some(w) => {
                assert_eq!(plan.warnings.len(), 1, "{stage}: {plan:?}");
                assert!(plan.warnings[0].message.starts_with(w), "{stage}: {:?}", plan.warnings);
                assert!(plan.warnings[0].message.ends_with(&format!("{stage} broke")), "the error is kept");
                assert_eq!(plan.warnings[0].stage, Some(stage));
            }
            None => {
                assert!(plan.warnings.is_empty());
                assert_eq!(plan.error, Some(format!("{stage} broke")));
            }
        }
    }
    let plan = Case::new().jobs(&all_done()).plan();
    assert_eq!(plan.state, Some(VideoState::Completed));
    let earlier = Case { warned: true, ..Case::new() }.jobs(&all_done()).plan();
    assert_eq!(earlier.state, Some(VideoState::CompletedWithWarnings), "a stage's own warning counts");
    let settled = Case { state: VideoState::Completed, ..Case::new() }.jobs(&all_done()).plan();
    assert_eq!(settled, Plan::default(), "settling twice changes nothing");
}

#[test]
fn no_final_state_while_anything_is_queued_or_running() {
    for state in [Queued, Running] {
        let plan = Case::new().jobs(&with(all_done(), Dub(lang("it")), state)).plan();
        assert_eq!(plan, Plan::default(), "{state:?}");
    }
}

#[test]
fn a_source_without_sound_is_encoded_only_and_says_so() {
    let case = Case { audio: Some(false), spoken: None, ..Case::new() };
    let plan = case.jobs(&[(Probe, Done)]).plan();
    assert_eq!(plan.queue, vec![Encode]);
    assert_eq!(plan.warnings, vec![Warning { stage: Some(Probe), message: NO_AUDIO.into() }]);
    let case = Case { audio: Some(false), spoken: None, warned: true, ..Case::new() };
    let plan = case.jobs(&[(Probe, Done), (Encode, Done)]).plan();
    assert_eq!(plan.state, Some(VideoState::CompletedWithWarnings));
    let unknown = Case { audio: None, ..Case::new() }.jobs(&[(Probe, Done)]).plan();
    assert!(unknown.queue.is_empty(), "nothing until the probe's facts are known");
}

#[test]
fn given_subtitles_are_imported_instead_of_transcribed_with_or_without_sound() {
    let (es, it) = (lang("es"), lang("it"));
    for audio in [true, false] {
        let case = || Case { given_transcript: true, audio: Some(audio), ..Case::new() };
        let plan = case().jobs(&[(Probe, Done)]).plan();
        assert_eq!((plan.queue, plan.warnings), (vec![Encode, Import], vec![]), "audio {audio}");
        let plan = case().jobs(&[(Probe, Done), (Encode, Running), (Import, Done)]).plan();
        assert_eq!(plan.queue, vec![Translate(es), Translate(it)]);
        let plan = case().jobs(&[(Probe, Done), (Encode, Done), (Import, Done)]).plan();
        assert_eq!(plan.queue, vec![Captions, Translate(es), Translate(it)]);
        let done = [Probe, Encode, Import, Captions, Translate(es), Translate(it), Dub(es), Dub(it)];
        let plan = case().jobs(&done.map(|s| (s, Done))).plan();
        assert_eq!(plan.state, Some(VideoState::Completed), "no transcribe needed");
        let plan = case().jobs(&[(Probe, Done), (Encode, Done), (Import, Dead)]).plan();
        assert_eq!(plan.state, Some(VideoState::CompletedWithWarnings));
        assert!(plan.warnings[0].message.starts_with("published without captions: import failed"));
    }
    let plan = Case { given_transcript: true, spoken: None, ..Case::new() }
        .jobs(&[(Probe, Done), (Encode, Running), (Import, Done)])
        .plan();
    assert!(plan.queue.is_empty(), "nothing until the import's result is recorded");
}

#[test]
fn subtitles_to_retime_are_imported_after_the_speech_is_recognised() {
    let (es, it) = (lang("es"), lang("it"));
    let case = || Case { given_transcript: true, retime: true, ..Case::new() };
    assert_eq!(case().jobs(&[(Probe, Done)]).plan().queue, vec![Encode, Transcribe]);
    let plan = case().jobs(&[(Probe, Done), (Encode, Running), (Transcribe, Running)]).plan();
    assert!(plan.queue.is_empty(), "the import waits for the words: {plan:?}");
    let plan = case().jobs(&[(Probe, Done), (Encode, Running), (Transcribe, Done)]).plan();
    assert_eq!(plan.queue, vec![Import], "the translations wait for the import");
    let plan = case().jobs(&[(Probe, Done), (Encode, Running), (Transcribe, Done), (Import, Done)]).plan();
    assert_eq!(plan.queue, vec![Translate(es), Translate(it)]);
    // Recognition died: the subtitles are imported as timed, and the warning says so.
    let plan = case().jobs(&[(Probe, Done), (Encode, Done), (Transcribe, Dead)]).plan();
    assert_eq!(plan.queue, vec![Import]);
    let done = [Probe, Encode, Transcribe, Import, Captions, Translate(es), Translate(it), Dub(es), Dub(it)];
    let plan = case().jobs(&with(done.map(|s| (s, Done)).to_vec(), Transcribe, Dead)).plan();
    assert_eq!(plan.state, Some(VideoState::CompletedWithWarnings));
    assert!(plan.warnings[0].message.starts_with("the given subtitles keep their times: transcribe failed"));
    // No sound: nothing to recognise; imported as timed at once.
    let plan = Case { audio: Some(false), ..case() }.jobs(&[(Probe, Done)]).plan();
    assert_eq!((plan.queue, plan.warnings), (vec![Encode, Import], vec![]));
}

#[test]
fn targets_that_cannot_be_reached_are_left_out_by_name_before_any_work() {
    let jobs = [(Probe, Done), (Encode, Done), (Transcribe, Done)];
    let case = Case { targets: vec![lang("de"), lang("es")], ..Case::new() };
    let plan = case.jobs(&jobs).plan();
    assert_eq!(plan.queue, vec![Captions, Translate(lang("es"))]);
    assert_eq!(plan.warnings.len(), 1);
    assert!(
        plan.warnings[0]
            .message
            .starts_with("Deutsch (de) left out: no installed engine translates en to de")
    );

    let spoken_es = Case { spoken: Some(Spoken { language: "es".into(), cues: 3 }), ..Case::new() };
    let plan = spoken_es.jobs(&jobs).plan();
    assert_eq!(plan.queue, vec![Captions], "from es nothing is installed");
    assert!(plan.warnings[0].message.contains("it is the spoken language"), "{:?}", plan.warnings);
    assert!(plan.warnings[1].message.contains("translates es to it"), "{:?}", plan.warnings);

    let unknown = Case { spoken: Some(Spoken { language: "sw".into(), cues: 3 }), ..Case::new() };
    let plan = unknown.jobs(&jobs).plan();
    assert_eq!(plan.queue, vec![Captions]);
    assert!(plan.warnings[0].message.contains("\"sw\""), "{:?}", plan.warnings);

    let silent = Case { spoken: Some(Spoken { language: "en".into(), cues: 0 }), ..Case::new() };
    let plan = silent.jobs(&jobs).plan();
    assert_eq!(plan.queue, vec![Captions]);
    assert!(plan.warnings[0].message.contains("the transcript is empty"));
}

#[test]
fn with_review_translations_wait_for_the_approval() {
    let jobs = [(Probe, Done), (Encode, Running), (Transcribe, Done)];
    let review = Case { review: true, ..Case::new() };
    let plan = review.jobs(&jobs).plan();
    assert_eq!((plan.queue, plan.state), (vec![], Some(VideoState::AwaitingReview)));

    let waiting = Case { review: true, state: VideoState::AwaitingReview, ..Case::new() };
    let plan = waiting.jobs(&[(Probe, Done), (Encode, Done), (Transcribe, Done), (Captions, Done)]).plan();
    assert_eq!(plan, Plan::default(), "waiting is not final");

    let approved = Case { review: true, approved_ms: Some(100), ..Case::new() };
    let plan = approved.jobs(&jobs).plan();
    assert_eq!(plan.queue, vec![Translate(lang("es")), Translate(lang("it"))]);
    assert_eq!(plan.state, None);
}

#[test]
fn an_edit_reruns_the_translations_and_then_their_dubs() {
    let (es, it) = (lang("es"), lang("it"));
    // all_done's jobs start at 10, 20, ... 80: translate-es at 50, translate-it at 60.
    let edited = Case { state: VideoState::Completed, edited_ms: Some(1000), ..Case::new() };
    let plan = edited.jobs(&all_done()).plan();
    assert_eq!(plan.rerun, vec![Translate(es), Translate(it)]);
    assert_eq!(plan.state, Some(VideoState::Processing), "a completed video is processing again");

    // translate-es ran again after the edit and finished after dub-es began.
    let mut case =
        Case { state: VideoState::Processing, edited_ms: Some(1000), ..Case::new() }.jobs(&all_done());
    for j in &mut case.jobs {
        if j.stage == Translate(es) {
            (j.started_ms, j.finished_ms) = (Some(1010), Some(1020));
        }
    }
    let plan = case.plan();
    assert_eq!(plan.rerun, vec![Translate(it), Dub(es)]);

    let before = Case { edited_ms: Some(5), ..Case::new() }.jobs(&all_done()).plan();
    assert!(before.rerun.is_empty(), "an edit before the translations began changes nothing");
}

#[test]
fn with_review_translations_the_dubs_wait_until_every_translation_is_approved() {
    let (es, it) = (lang("es"), lang("it"));
    let before = [(Probe, Done), (Encode, Done), (Transcribe, Done), (Captions, Done)];
    let gated = || Case { review_translations: true, ..Case::new() };
    let one_left = [&before[..], &[(Translate(es), Done), (Translate(it), Running)]].concat();
    let plan = gated().jobs(&one_left).plan();
    assert_eq!((plan.queue, plan.state), (vec![], None), "still translating: not waiting yet");

    let translated = [&before[..], &[(Translate(es), Done), (Translate(it), Done)]].concat();
    let plan = gated().jobs(&translated).plan();
    assert_eq!(plan.queue, vec![]);
    assert_eq!((plan.state, plan.review), (Some(VideoState::AwaitingReview), Some(Review::Translations)));
    let waiting = Case { state: VideoState::AwaitingReview, ..gated() }.jobs(&translated).plan();
    assert_eq!(waiting, Plan::default(), "waiting is not final");

    let approved = Case { translations_approved_ms: Some(1000), ..gated() }.jobs(&translated).plan();
    assert_eq!((approved.queue, approved.state), (vec![Dub(es), Dub(it)], None));

    // One language dead: the other still waits for its review.
    let one_dead = [&before[..], &[(Translate(es), Dead), (Translate(it), Done)]].concat();
    let plan = gated().jobs(&one_dead).plan();
    assert_eq!(plan.state, Some(VideoState::AwaitingReview));
}

#[test]
fn a_reviewers_edit_of_one_language_redubs_only_that_language() {
    let es = lang("es");
    // all_done's dub-es starts at 70.
    let edited = Case { state: VideoState::Completed, translation_edits: vec![(es, 1000)], ..Case::new() };
    let plan = edited.jobs(&all_done()).plan();
    assert_eq!(plan.rerun, vec![Dub(es)]);
    assert_eq!(plan.state, Some(VideoState::Processing));
    let old = Case { state: VideoState::Completed, translation_edits: vec![(es, 65)], ..Case::new() };
    assert_eq!(old.jobs(&all_done()).plan(), Plan::default(), "already in the dub that began after it");
}

#[test]
fn the_missing_languages_are_those_without_a_finished_dub() {
    let (es, it) = (lang("es"), lang("it"));
    let jobs: Vec<JobFacts> =
        with(all_done(), Dub(it), Dead).into_iter().map(|(s, st)| job(s, st, 1, 2)).collect();
    assert_eq!(missing_languages(&[es, it], &jobs), vec![it]);
    assert_eq!(missing_languages(&[es, lang("de")], &jobs), vec![lang("de")]);
}

#[test]
fn a_cancelled_video_starts_nothing_more_whatever_happens() {
    let cancelled = Case { state: VideoState::Cancelled, edited_ms: Some(1000), ..Case::new() };
    let jobs = [(Probe, Done), (Encode, Dead), (Transcribe, Done)];
    assert_eq!(cancelled.jobs(&jobs).plan(), Plan::default());
}
