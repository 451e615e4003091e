//! Tests of the whole path from words to cues, held to the rules by [`check`].

use super::*;

fn w(text: &str, start: u64, end: u64) -> Word {
    Word::new(text, Millis(start), Millis(end))
}

/// xorshift64: reproducible pseudo-random speech without a dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

const VOCABULARY: &[&str] = &[
    "the",
    "a",
    "we",
    "it",
    "is",
    "and",
    "of",
    "to",
    "in",
    "that",
    "speech",
    "captions",
    "really",
    "matter",
    "because",
    "people",
    "watch",
    "videos",
    "without",
    "sound",
    "on",
    "trains",
    "offices",
    "every",
    "single",
    "day",
    "broadcasters",
    "learned",
    "this",
    "long",
    "ago",
    "so",
    "their",
    "rules",
    "are",
    "strict",
    "about",
    "timing",
    "reading",
    "speed",
    "lines",
    "understanding",
    "international",
    "conversation",
    "remarkably",
    "straightforward",
    "you",
    "know",
    "what",
    "I",
    "mean",
    "when",
    "nobody",
    "listens",
    "carefully",
    "enough",
];

/// A monologue of `count` words spoken at about `ms_per_char` per character, in
/// sentences of 4 to 22 words with commas here and there, pauses after clauses and
/// longer ones (sometimes over a second) after sentences.
fn monologue(seed: u64, count: usize, ms_per_char: u64) -> Vec<Word> {
    let mut rng = Rng(seed);
    let mut words = Vec::with_capacity(count);
    let mut t = 400;
    let mut left_in_sentence = 0;
    for k in 0..count {
        let mut text = VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize].to_owned();
        if left_in_sentence == 0 {
            left_in_sentence = rng.between(4, 22);
            let mut chars = text.chars();
            text = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
        }
        left_in_sentence -= 1;
        let pause = if left_in_sentence == 0 || k + 1 == count {
            text.push(['.', '?', '!'][rng.below(3) as usize]);
            rng.between(250, 1_600)
        } else if rng.below(7) == 0 {
            text.push(',');
            rng.between(150, 400)
        } else {
            rng.between(20, 120)
        };
        let duration = 40 + ms_per_char * text.chars().count() as u64;
        words.push(w(&format!(" {text}"), t, t + duration));
        t += duration + pause;
    }
    words
}

/// The words' text as the cues should show it, spaces for line breaks.
fn spoken(words: &[Word]) -> String {
    words.iter().map(|w| w.text.trim()).collect::<Vec<_>>().join(" ")
}

fn shown(cues: &[Cue]) -> String {
    cues.iter().map(|c| c.text.replace('\n', " ")).collect::<Vec<_>>().join(" ")
}

/// The rules every output must keep whatever the speech: layout, duration, order
/// and gaps, and the text unchanged. Words must be single tokens with sane timings.
fn assert_well_formed(cues: &[Cue], words: &[Word], p: &CaptionProfile) {
    assert_eq!(shown(cues), spoken(words));
    let errors: Vec<_> = check(cues, p)
        .into_iter()
        .filter(|v| v.severity == Severity::Error && v.kind != ViolationKind::TooFast)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let gap = p.min_gap.0;
    let mut next_word = 0;
    for (c, cue) in cues.iter().enumerate() {
        let n = cue.text.split_whitespace().count();
        let (first, last) = (&words[next_word], &words[next_word + n - 1]);
        let following = words.get(next_word + n);
        assert!(cue.start <= first.start, "cue {c} starts after its first word: {cue:?}");
        let must_end = following.map_or(last.end.0, |f| last.end.0.min(f.start.0.saturating_sub(gap)));
        assert!(cue.end.0 >= must_end, "cue {c} ends before its last word: {cue:?}");
        for pair in words[next_word..next_word + n].windows(2) {
            assert!(pair[1].start.0 - pair[0].end.0 <= p.max_pause.0, "cue {c} spans a long pause");
        }
        next_word += n;
    }
}

/// Over the comfortable speed only where the cue already takes all the time it
/// could: its end meets the next cue (or the maximum duration) and its start meets
/// the previous cue (or the start of the media).
fn assert_comfortable_where_possible(cues: &[Cue], p: &CaptionProfile) {
    for (c, cue) in cues.iter().enumerate() {
        if chars_per_second(cue) <= p.target_cps + 1e-9 || cue.duration() >= p.max_duration {
            continue;
        }
        let end_blocked = cues.get(c + 1).is_some_and(|next| cue.end.0 + p.min_gap.0 >= next.start.0);
        let start_blocked =
            cue.start.0 == 0 || c.checked_sub(1).is_some_and(|i| cues[i].end.0 + p.min_gap.0 >= cue.start.0);
        assert!(end_blocked && start_blocked, "cue {c} could have had more time: {cue:?}");
    }
}

#[test]
fn a_long_monologue_keeps_every_rule() {
    let p = CaptionProfile::default();
    for seed in [1, 7, 42, 2024] {
        let words = monologue(seed, 1_500, 55);
        let cues = cues_from_words(&words, &p);
        assert_well_formed(&cues, &words, &p);
        assert_comfortable_where_possible(&cues, &p);
        let too_fast: Vec<_> =
            check(&cues, &p).into_iter().filter(|v| v.kind == ViolationKind::TooFast).collect();
        assert!(too_fast.is_empty(), "seed {seed}: {too_fast:#?}");
        for cue in &cues {
            assert!(cue.text.lines().count() <= 2 && cue.text.lines().all(|l| l.chars().count() <= 42));
            assert!(cue.duration() >= Millis(833) && cue.duration() <= Millis(7_000));
        }
        // Most cues end where a sentence or a clause does.
        let at_boundaries = cues.iter().filter(|c| c.text.ends_with(['.', '?', '!', ','])).count();
        assert!(at_boundaries * 10 >= cues.len() * 6, "seed {seed}: {at_boundaries} of {}", cues.len());
    }
}

#[test]
fn fast_speech_keeps_every_other_rule_and_gets_all_the_time_there_is() {
    let p = CaptionProfile::default();
    // About 25 characters per second, beyond what can be read.
    let words = monologue(3, 600, 32);
    let cues = cues_from_words(&words, &p);
    assert_well_formed(&cues, &words, &p);
    assert_comfortable_where_possible(&cues, &p);
}

#[test]
fn empty_input_gives_no_cues() {
    let p = CaptionProfile::default();
    assert_eq!(cues_from_words(&[], &p), []);
    assert_eq!(cues_from_words(&[w(" ", 0, 10), w("", 10, 20)], &p), []);
}

#[test]
fn a_single_word_lasts_the_minimum() {
    let cues = cues_from_words(&[w(" Yes.", 5_000, 5_200)], &CaptionProfile::default());
    assert_eq!(cues, [Cue { start: Millis(5_000), end: Millis(5_833), text: "Yes.".into() }]);
}

#[test]
fn ends_shortly_after_the_last_word() {
    let words = [w(" Thank", 1_000, 1_300), w(" you", 1_300, 1_500), w(" all.", 1_500, 1_900)];
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(cues, [Cue { start: Millis(1_000), end: Millis(2_400), text: "Thank you all.".into() }]);
}

#[test]
fn a_long_pause_always_ends_the_cue() {
    let words = [w(" Well,", 0, 300), w(" I", 350, 450), w(" think", 1_700, 2_000), w(" so.", 2_000, 2_300)];
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(cues.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["Well, I", "think so."]);
    assert_well_formed(&cues, &words, &CaptionProfile::default());
}

/// Words spoken evenly, one every `step` ms, so that only the text guides breaks.
fn even(text: &str, step: u64) -> Vec<Word> {
    text.split(' ')
        .enumerate()
        .map(|(k, t)| w(&format!(" {t}"), k as u64 * step, k as u64 * step + step - 20))
        .collect()
}

#[test]
fn cues_end_at_sentence_ends_first() {
    let words = even(
        "The committee met on Tuesday to discuss the new plan. Everyone agreed that the budget \
         needed another careful review before spring.",
        330,
    );
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(cues.len(), 2, "{cues:#?}");
    assert!(cues[0].text.ends_with("plan."), "{cues:#?}");
    assert_well_formed(&cues, &words, &CaptionProfile::default());
}

#[test]
fn then_at_clause_ends() {
    let words = even(
        "When the long meeting about the budget was finally over, everyone in the room went \
         home to sleep for a while",
        330,
    );
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(cues.len(), 2, "{cues:#?}");
    assert!(cues[0].text.ends_with("over,"), "{cues:#?}");
}

#[test]
fn a_sentence_starts_a_new_line() {
    let words = even("It was late. We went home and slept until noon.", 250);
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(cues.len(), 1, "{cues:#?}");
    assert_eq!(cues[0].text, "It was late.\nWe went home and slept until noon.");
}

#[test]
fn a_word_longer_than_a_line_gets_a_cue_of_its_own() {
    let url = "https://example.com/a/very/long/path/that/cannot/be/broken/at/all";
    let words = [w(" Visit", 0, 300), w(&format!(" {url}"), 300, 2_500), w(" today.", 2_500, 2_900)];
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(shown(&cues), format!("Visit {url} today."));
    assert!(cues.iter().any(|c| c.text == url), "{cues:#?}");
    let only_url = cues_from_words(&[w(url, 0, 100)], &CaptionProfile::default());
    assert_eq!(only_url.len(), 1);
    assert_eq!(only_url[0].text, url);
}

#[test]
fn zero_and_inverted_timings_do_not_panic_and_stay_well_formed() {
    let p = CaptionProfile::default();
    let zero: Vec<Word> = (0..60).map(|k| w(&format!(" word{k}"), 0, 0)).collect();
    let inverted: Vec<Word> = (0..60)
        .map(|k| w(&format!(" word{k}"), 10_000 - k * 150, 9_000u64.saturating_sub(k * 200)))
        .collect();
    let huge = [w(" a", u64::MAX, u64::MAX), w(" b", 0, u64::MAX), w(" c", 5, 1)];
    for words in [&zero[..], &inverted[..], &huge[..]] {
        let cues = cues_from_words(words, &p);
        assert_eq!(shown(&cues), spoken(words));
        let broken: Vec<_> = check(&cues, &p)
            .into_iter()
            .filter(|v| {
                matches!(
                    v.kind,
                    ViolationKind::Overlap | ViolationKind::GapTooSmall | ViolationKind::InvalidTiming
                )
            })
            .collect();
        assert!(broken.is_empty(), "{broken:#?}");
    }
}

#[test]
fn pieces_of_a_word_are_never_separated() {
    let words = [w(" I", 0, 100), w(" don", 100, 300), w("'t", 300, 400), w(" know.", 400, 800)];
    let cues = cues_from_words(&words, &CaptionProfile::default());
    assert_eq!(shown(&cues), "I don't know.");
}

#[test]
fn unspaced_scripts_break_between_words_without_adding_spaces() {
    let p = CaptionProfile { max_line_chars: 16, ..CaptionProfile::default() };
    let words: Vec<Word> = "我们 今天 讨论 字幕 的 规则 。 每 一行 不能 太 长 , 阅读 速度 也 很 重要 。"
        .split(' ')
        .enumerate()
        .map(|(k, t)| w(t, k as u64 * 300, k as u64 * 300 + 280))
        .collect();
    let cues = cues_from_words(&words, &p);
    let text: String = cues.iter().map(|c| c.text.replace('\n', "")).collect();
    assert_eq!(text, "我们今天讨论字幕的规则。每一行不能太长,阅读速度也很重要。");
    assert!(cues.iter().all(|c| c.text.lines().all(|l| l.chars().count() <= 16)), "{cues:#?}");
}

#[test]
fn a_one_line_profile_makes_one_line_cues() {
    let p = CaptionProfile { max_lines: 1, ..CaptionProfile::default() };
    let words = monologue(9, 300, 55);
    let cues = cues_from_words(&words, &p);
    assert!(cues.iter().all(|c| !c.text.contains('\n') && c.text.chars().count() <= 42));
    assert_well_formed(&cues, &words, &p);
}

#[test]
fn the_profile_is_broadcast_by_default_and_serialises_in_milliseconds() {
    let p = CaptionProfile::default();
    assert_eq!(p, CaptionProfile::broadcast());
    let json = serde_json::to_value(&p).expect("serialises");
    assert_eq!(json["min_duration_ms"], 833);
    assert_eq!(json["max_line_chars"], 42);
    let back: CaptionProfile = serde_json::from_value(json).expect("deserialises");
    assert_eq!(back, p);
}

#[test]
fn reading_speed_counts_characters_but_not_line_breaks() {
    let cue = Cue { start: Millis(0), end: Millis(2_000), text: "abcd\nefgh".into() };
    assert_eq!(characters(&cue.text), 8);
    assert!((chars_per_second(&cue) - 4.0).abs() < 1e-9);
}

#[test]
fn absurd_profiles_do_not_panic() {
    let words = monologue(5, 200, 55);
    let absurd = [
        CaptionProfile { max_line_chars: 0, max_lines: 0, ..CaptionProfile::default() },
        CaptionProfile { max_line_chars: usize::MAX, max_lines: usize::MAX, ..CaptionProfile::default() },
        CaptionProfile {
            min_duration: Millis(u64::MAX),
            max_duration: Millis(0),
            target_cps: f64::NAN,
            max_cps: 0.0,
            min_gap: Millis(u64::MAX),
            max_tail: Millis(u64::MAX),
            chain_below: Millis(u64::MAX),
            max_pause: Millis(0),
            ..CaptionProfile::default()
        },
        CaptionProfile { target_cps: -1.0, max_cps: f64::INFINITY, ..CaptionProfile::default() },
    ];
    for p in &absurd {
        let cues = cues_from_words(&words, p);
        assert_eq!(shown(&cues), spoken(&words));
        assert!(cues.iter().all(|c| c.end > c.start));
        let _ = check(&cues, p);
    }
}
