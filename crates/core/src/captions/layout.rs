//! Line breaking: how the atoms of one cue are set on at most `max_lines` lines.
//!
//! A cue that fits on one line gets one line. Otherwise every way to cut it into the
//! fewest lines that fit is scored and the cheapest wins: the kind of boundary at
//! each line break (sentence end, then clause, then plain word) plus how unequal the
//! lines are, where a longer bottom line (a pyramid) costs less than a longer top one.

use super::CaptionProfile;
use super::atoms::{Atom, Boundary};

/// The cost of breaking a line after each kind of boundary, in the unit of
/// imbalance (characters): breaking after a clause rather than a sentence end is
/// worth 10 characters of imbalance, after a plain word 20.
fn line_break_cost(b: Boundary) -> f64 {
    match b {
        Boundary::Sentence => 0.0,
        Boundary::Clause => 10.0,
        Boundary::Word => 20.0,
    }
}

/// Per character of distance from the average line length. A line longer than
/// average costs more on top than at the bottom, which makes a bottom-heavy pyramid
/// (0.35 per character of difference) cheaper than a top-heavy one (0.5).
const SHORT_LINE: f64 = 0.5;
const LONG_LINE: f64 = 0.5;
const LONG_LAST_LINE: f64 = 0.2;

/// A sentence that ends in the middle of a line of a multi-line cue reads badly:
/// the next sentence should start on a line of its own.
const SENTENCE_INSIDE_LINE: f64 = 8.0;

/// The atoms of a whole transcript with prefix sums, so that the length of any run
/// of atoms set on one line is known in constant time.
#[derive(Debug)]
pub(super) struct Text {
    pub atoms: Vec<Atom>,
    /// `width[k]`: characters of atoms `..k`, each counted with the space before it.
    width: Vec<usize>,
    /// `sentences[k]`: how many of atoms `..k` end a sentence.
    sentences: Vec<usize>,
}

impl Text {
    pub fn new(atoms: Vec<Atom>) -> Text {
        let mut width = Vec::with_capacity(atoms.len() + 1);
        let mut sentences = Vec::with_capacity(atoms.len() + 1);
        let (mut w, mut s) = (0, 0);
        width.push(0);
        sentences.push(0);
        for a in &atoms {
            w += a.chars + usize::from(a.space_before);
            s += usize::from(a.after == Boundary::Sentence);
            width.push(w);
            sentences.push(s);
        }
        Text { atoms, width, sentences }
    }

    /// Characters of atoms `a..b` set on one line.
    pub fn len(&self, a: usize, b: usize) -> usize {
        self.width[b] - self.width[a] - usize::from(self.atoms[a].space_before)
    }

    /// How many of atoms `a..b` end a sentence, not counting the last one.
    fn sentences_inside(&self, a: usize, b: usize) -> usize {
        self.sentences[b - 1] - self.sentences[a]
    }

    /// Atoms `a..b` as one line.
    pub fn line(&self, a: usize, b: usize) -> String {
        let mut line = String::with_capacity(self.len(a, b));
        for (k, atom) in self.atoms[a..b].iter().enumerate() {
            if k > 0 && atom.space_before {
                line.push(' ');
            }
            line.push_str(&atom.text);
        }
        line
    }
}

/// The chosen lines of one cue.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layout {
    /// How bad it is; 0 for a single line.
    pub cost: f64,
    /// The atoms (absolute indices) that start the second and later lines.
    pub breaks: Vec<usize>,
}

impl Layout {
    /// The cue text: its lines joined by `\n`.
    pub fn render(&self, text: &Text, a: usize, b: usize) -> String {
        let starts = std::iter::once(a).chain(self.breaks.iter().copied());
        let ends = self.breaks.iter().copied().chain(std::iter::once(b));
        starts.zip(ends).map(|(s, e)| text.line(s, e)).collect::<Vec<_>>().join("\n")
    }
}

/// The best layout of atoms `a..b`, or `None` when they do not fit in
/// `max_lines` lines of `max_line_chars`. A single atom always fits, even one longer
/// than a line (a URL): it cannot be broken, and it must still be shown.
pub(super) fn layout(text: &Text, a: usize, b: usize, profile: &CaptionProfile) -> Option<Layout> {
    if b - a == 1 || text.len(a, b) <= profile.max_line_chars {
        return Some(Layout { cost: 0.0, breaks: Vec::new() });
    }
    // More lines than atoms cannot be filled.
    (2..=profile.max_lines.min(b - a)).find_map(|lines| best_in(text, a, b, lines, profile))
}

/// The cheapest way to set atoms `a..b` on exactly `lines` lines, by dynamic
/// programming over (lines used, atoms covered).
fn best_in(text: &Text, a: usize, b: usize, lines: usize, profile: &CaptionProfile) -> Option<Layout> {
    let n = b - a;
    if n < lines {
        return None;
    }
    let average = text.len(a, b) as f64 / lines as f64;
    let line_cost = |s: usize, e: usize, last: bool| -> Option<f64> {
        let len = text.len(s, e);
        if len > profile.max_line_chars {
            return None;
        }
        let over = len as f64 - average;
        let weight = match (over > 0.0, last) {
            (false, _) => SHORT_LINE,
            (true, false) => LONG_LINE,
            (true, true) => LONG_LAST_LINE,
        };
        Some(weight * over.abs() + SENTENCE_INSIDE_LINE * text.sentences_inside(s, e) as f64)
    };
    // cost[m][k]: the best cost of atoms a..a+k on m+1 lines; from[m][k] where the
    // last of those lines starts.
    let mut cost = vec![vec![f64::INFINITY; n + 1]; lines];
    let mut from = vec![vec![0; n + 1]; lines];
    for (k, slot) in cost[0].iter_mut().enumerate().skip(1) {
        if let Some(c) = line_cost(a, a + k, lines == 1) {
            *slot = c;
        }
    }
    for m in 1..lines {
        let last = m + 1 == lines;
        // Only the full run matters on the last line.
        let ends = if last { n..=n } else { (m + 1)..=n };
        for k in ends {
            for p in m..k {
                if !cost[m - 1][p].is_finite() {
                    continue;
                }
                let Some(c) = line_cost(a + p, a + k, last) else { continue };
                let total = cost[m - 1][p] + line_break_cost(text.atoms[a + p - 1].after) + c;
                if total < cost[m][k] {
                    cost[m][k] = total;
                    from[m][k] = p;
                }
            }
        }
    }
    if !cost[lines - 1][n].is_finite() {
        return None;
    }
    let mut breaks = Vec::with_capacity(lines - 1);
    let mut k = n;
    for m in (1..lines).rev() {
        k = from[m][k];
        breaks.push(a + k);
    }
    breaks.reverse();
    Some(Layout { cost: cost[lines - 1][n], breaks })
}

#[cfg(test)]
mod tests {
    use super::super::atoms::atoms;
    use super::*;
    use crate::cue::Millis;
    use crate::transcript::Word;

    fn text(s: &str) -> Text {
        let words: Vec<Word> =
            s.split(' ').map(|w| Word::new(format!(" {w}"), Millis(0), Millis(0))).collect();
        Text::new(atoms(&words))
    }

    fn set(s: &str) -> Option<String> {
        let t = text(s);
        let n = t.atoms.len();
        layout(&t, 0, n, &CaptionProfile::default()).map(|l| l.render(&t, 0, n))
    }

    #[test]
    fn short_text_stays_on_one_line() {
        assert_eq!(set("Yes. I agree with you.").as_deref(), Some("Yes. I agree with you."));
    }

    #[test]
    fn balances_two_lines_at_word_boundaries() {
        let out = set("the quick brown fox jumps over the lazy dog and keeps running far").expect("fits");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let (a, b) = (lines[0].chars().count(), lines[1].chars().count());
        assert!(a.abs_diff(b) <= 6, "{out:?}");
        assert!(a <= 42 && b <= 42);
    }

    #[test]
    fn prefers_sentence_then_clause_boundaries() {
        assert_eq!(
            set("It was late. We went home and slept until noon.").as_deref(),
            Some("It was late.\nWe went home and slept until noon.")
        );
        assert_eq!(
            set("When the rain finally stopped, we walked down to the harbour").as_deref(),
            Some("When the rain finally stopped,\nwe walked down to the harbour")
        );
    }

    #[test]
    fn prefers_a_pyramid_to_an_inverted_one() {
        // Ten words of five characters: 59 characters, no good boundary; 5/5 words
        // is balanced, and a bottom-heavy 4/6 beats a top-heavy 6/4.
        let t = text("aaaaa bbbbb ccccc ddddd eeeee fffff ggggg hhhhh iiiii jjjjj kkkk");
        let n = t.atoms.len();
        let out = layout(&t, 0, n, &CaptionProfile::default()).expect("fits").render(&t, 0, n);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].len() <= lines[1].len(), "{out:?}");
    }

    #[test]
    fn too_much_text_does_not_fit_but_one_long_atom_always_does() {
        assert_eq!(set(&["word"; 30].join(" ")), None);
        let url = "https://example.com/a/very/long/path/that/cannot/be/broken/anywhere";
        assert_eq!(set(url).as_deref(), Some(url));
        // Next to other words the long atom cannot be placed.
        assert_eq!(set(&format!("see {url}")), None);
    }
}
