//! Recognised words → atoms: the pieces of text a line or a cue may break between
//! and never inside.

use crate::cue::Millis;
use crate::transcript::Word;

/// How good a place the end of an atom is for a line or cue break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Boundary {
    /// Between two words of a clause.
    Word,
    /// After `,` `;` `:` or a dash.
    Clause,
    /// After `.` `?` `!` `…`.
    Sentence,
}

/// One unbreakable unit of text with its timing.
#[derive(Debug, Clone)]
pub(super) struct Atom {
    /// The text, without surrounding whitespace.
    pub text: String,
    /// `text` in characters.
    pub chars: usize,
    /// Whether a space separates it from the atom before on the same line.
    pub space_before: bool,
    /// Milliseconds; never before the previous atom's start.
    pub start: i64,
    /// Milliseconds; never before `start`.
    pub end: i64,
    /// What kind of break its end is.
    pub after: Boundary,
}

/// Times are capped far beyond any real media (about 140 000 years) so that sums of
/// a few of them can never overflow an `i64`.
const FAR_MS: u64 = 1 << 52;

/// A [`Millis`] as signed milliseconds, to compute with without underflow.
pub(super) fn ms(m: Millis) -> i64 {
    m.0.min(FAR_MS) as i64
}

/// Builds the atoms of `words`, skipping empty ones and repairing timings that go
/// backwards (recognisers do report those) so that later stages can rely on order.
pub(super) fn atoms(words: &[Word]) -> Vec<Atom> {
    let mut out: Vec<Atom> = Vec::new();
    for word in words {
        let leading_space = word.text.starts_with(char::is_whitespace);
        let text = word.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some(first) = text.chars().next() else { continue };
        let (start, end) = (ms(word.start), ms(word.end));
        if let Some(prev) = out.last_mut()
            && !leading_space
            && continues_previous(first)
        {
            // A split contraction ("don" + "'t") or a detached mark ("word" + ","):
            // breaking here would be breaking inside a word.
            prev.text.push_str(&text);
            prev.end = prev.end.max(end);
            continue;
        }
        let space_before = match out.last() {
            None => false,
            Some(_) if leading_space => true,
            // Between characters of scripts written without spaces (Chinese,
            // Japanese, Thai) a break needs no space. Elsewhere a word without its
            // leading space comes from a caller that trimmed it.
            Some(prev) => !(prev.text.chars().next_back().is_some_and(unspaced) || unspaced(first)),
        };
        out.push(Atom { text, chars: 0, space_before, start, end, after: Boundary::Word });
    }
    let mut floor = 0;
    for atom in &mut out {
        atom.chars = atom.text.chars().count();
        atom.after = boundary_after(&atom.text);
        atom.start = atom.start.max(floor);
        atom.end = atom.end.max(atom.start);
        floor = atom.start;
    }
    out
}

/// Whether a word that starts with `c` and has no leading space belongs to the word
/// before it.
fn continues_previous(c: char) -> bool {
    !c.is_alphanumeric() && !opening(c)
}

/// Marks that open something, so they start a word rather than end one. Straight
/// quotes are left out: without a leading space they are far more often closing.
fn opening(c: char) -> bool {
    matches!(
        c,
        '(' | '['
            | '{'
            | '“'
            | '‘'
            | '«'
            | '‹'
            | '¿'
            | '¡'
            | '「'
            | '『'
            | '（'
            | '【'
            | '〈'
            | '《'
            | '〔'
    )
}

/// Characters of scripts that do not put spaces between words, and their
/// punctuation.
pub(super) fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x2E80..=0x2FFF // CJK radicals
        | 0x3000..=0x30FF // CJK punctuation, kana
        | 0x3100..=0x31FF // Bopomofo, katakana extensions
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF // CJK ideographs
        | 0xF900..=0xFAFF
        | 0xFF00..=0xFFEF // full-width forms
        | 0x20000..=0x3FFFF)
}

/// What kind of break follows `text`, looking through closing quotes and brackets
/// (`"Stop!"` ends a sentence).
fn boundary_after(text: &str) -> Boundary {
    let closing = |c: char| {
        matches!(
            c,
            '"' | '\''
                | '”'
                | '’'
                | ')'
                | ']'
                | '}'
                | '»'
                | '›'
                | '」'
                | '』'
                | '）'
                | '】'
                | '〉'
                | '》'
                | '*'
        )
    };
    let trimmed = text.trim_end_matches(closing);
    if !trimmed.is_empty() && trimmed.chars().all(|c| matches!(c, '-' | '–' | '—')) {
        return Boundary::Clause; // a spaced dash: "and then - well -"
    }
    match trimmed.chars().next_back() {
        Some('.' | '?' | '!' | '…' | '。' | '？' | '！' | '‼' | '⁇' | '⁈' | '⁉' | '؟' | '।') => {
            Boundary::Sentence
        }
        Some(',' | ';' | ':' | '—' | '–' | '、' | '，' | '；' | '：' | '،') => Boundary::Clause,
        _ => Boundary::Word,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, start: u64, end: u64) -> Word {
        Word::new(text, Millis(start), Millis(end))
    }

    fn texts(atoms: &[Atom]) -> Vec<(&str, bool)> {
        atoms.iter().map(|a| (a.text.as_str(), a.space_before)).collect()
    }

    #[test]
    fn glues_pieces_of_a_word_and_keeps_spaces() {
        let a = atoms(&[
            w(" I", 0, 100),
            w(" don", 100, 200),
            w("'t", 200, 300),
            w(" know", 300, 400),
            w(",", 400, 410),
        ]);
        assert_eq!(texts(&a), [("I", false), ("don't", true), ("know,", true)]);
        assert_eq!((a[1].start, a[1].end), (100, 300));
        assert_eq!(a[2].after, Boundary::Clause);
    }

    #[test]
    fn trimmed_words_get_spaces_and_cjk_gets_none() {
        assert_eq!(texts(&atoms(&[w("hello", 0, 1), w("world", 1, 2)])), [("hello", false), ("world", true)]);
        let a = atoms(&[w("我们", 0, 1), w("今天", 1, 2), w("。", 2, 3), w("好", 3, 4)]);
        assert_eq!(texts(&a), [("我们", false), ("今天。", false), ("好", false)]);
        assert_eq!(a[1].after, Boundary::Sentence);
        assert_eq!(
            texts(&atoms(&[w(" said", 0, 1), w("(quietly)", 1, 2)])),
            [("said", false), ("(quietly)", true)]
        );
    }

    #[test]
    fn boundaries_look_through_closing_quotes() {
        assert_eq!(boundary_after("\"Stop!\""), Boundary::Sentence);
        assert_eq!(boundary_after("so…"), Boundary::Sentence);
        assert_eq!(boundary_after("(yes),"), Boundary::Clause);
        assert_eq!(boundary_after("—"), Boundary::Clause);
        assert_eq!(boundary_after("3.5"), Boundary::Word);
        assert_eq!(boundary_after("well-known"), Boundary::Word);
    }

    #[test]
    fn repairs_backward_and_inverted_timings_and_skips_blanks() {
        let a = atoms(&[w(" a", 500, 100), w(" ", 0, 0), w(" b", 200, 300), w(" c", u64::MAX, 0)]);
        assert_eq!(texts(&a), [("a", false), ("b", true), ("c", true)]);
        for atom in &a {
            assert!(atom.end >= atom.start);
        }
        assert!(a.windows(2).all(|p| p[1].start >= p[0].start));
        assert_eq!(a[1].start, 500);
    }
}
