//! Passes only speech on to Whisper: a [`SampleSource`] that reads another, finds
//! speech with the VAD, and yields the speech spans back to back, remembering where
//! each came from so times can be mapped back to the input.
//!
//! Whisper given long silences or music wastes time and invents text ("Thank you
//! for watching"); given only speech, joined, it transcribes faster and better. The
//! same procedure faster-whisper uses, done here on a stream: samples are held only
//! until the detector has decided about them, so memory is bounded by the longest
//! speech span (capped by `max_speech_s`), not by the input.

use std::collections::VecDeque;

use crate::SpeechError;
use crate::transcribe::SampleSource;
use crate::vad::SpeechDetector;

/// Input samples read per step.
const READ_CHUNK: usize = 16_000;

/// Where the gate's output came from: `(output start, input start, length)` runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeMap {
    runs: Vec<(u64, u64, u64)>,
}

impl TimeMap {
    /// The input sample that output sample `out` came from. Past the last run,
    /// the end of the last run.
    pub fn to_input(&self, out: u64) -> u64 {
        let i = self.runs.partition_point(|&(start, _, _)| start <= out);
        match i.checked_sub(1).map(|i| self.runs[i]) {
            Some((out_start, in_start, len)) => in_start + (out - out_start).min(len),
            None => out,
        }
    }

    /// The same in seconds at 16 kHz.
    pub fn to_input_secs(&self, out_secs: f64) -> f64 {
        let out = (out_secs.max(0.0) * 16_000.0).round() as u64;
        self.to_input(out) as f64 / 16_000.0
    }

    /// Seconds of speech kept.
    pub fn speech_secs(&self) -> f64 {
        self.runs.iter().map(|r| r.2).sum::<u64>() as f64 / 16_000.0
    }
}

/// A sample source that lets only speech through.
#[derive(Debug)]
pub struct SpeechGate<S> {
    inner: S,
    detector: Option<SpeechDetector>,
    /// Input samples not yet decided, from `held_start` on.
    held: VecDeque<f32>,
    held_start: u64,
    /// Speech ready to be read.
    ready: VecDeque<f32>,
    out_pos: u64,
    map: TimeMap,
    input_read: u64,
}

impl<S: SampleSource> SpeechGate<S> {
    /// Gates `inner` with a fresh detector.
    pub fn new(inner: S, detector: SpeechDetector) -> SpeechGate<S> {
        SpeechGate {
            inner,
            detector: Some(detector),
            held: VecDeque::new(),
            held_start: 0,
            ready: VecDeque::new(),
            out_pos: 0,
            map: TimeMap::default(),
            input_read: 0,
        }
    }

    /// How output times map to input times (complete once the stream has ended).
    pub fn time_map(&self) -> &TimeMap {
        &self.map
    }

    /// Input samples read so far.
    pub fn input_samples(&self) -> u64 {
        self.input_read
    }

    fn take_span(&mut self, start: u64, end: u64) {
        let from = start.max(self.held_start);
        let to = end.min(self.held_start + self.held.len() as u64);
        if to <= from {
            return;
        }
        let (a, b) = ((from - self.held_start) as usize, (to - self.held_start) as usize);
        self.ready.extend(self.held.range(a..b));
        self.map.runs.push((self.out_pos, from, to - from));
        self.out_pos += to - from;
    }

    fn forget_before(&mut self, sample: u64) {
        let n = sample.saturating_sub(self.held_start).min(self.held.len() as u64) as usize;
        self.held.drain(..n);
        self.held_start += n as u64;
    }

    fn vad_error(e: impl std::fmt::Display) -> SpeechError {
        SpeechError::Audio(format!("voice activity detection failed: {e}"))
    }
}

impl TimeMap {
    /// The last output position in `(after, limit]` where a run starts, i.e. where
    /// one stretch of speech was joined to the one before.
    fn join_before(&self, after: u64, limit: u64) -> Option<u64> {
        let i = self.runs.partition_point(|&(start, _, _)| start <= limit);
        i.checked_sub(1).map(|i| self.runs[i].0).filter(|&start| start > after)
    }
}

impl<S: SampleSource> SampleSource for SpeechGate<S> {
    fn join_before(&self, after: u64, limit: u64) -> Option<u64> {
        self.map.join_before(after, limit)
    }

    fn read(&mut self, buf: &mut Vec<f32>, max: usize) -> Result<usize, SpeechError> {
        while self.ready.len() < max {
            let Some(detector) = self.detector.as_mut() else { break };
            let mut chunk = Vec::with_capacity(READ_CHUNK);
            let n = self.inner.read(&mut chunk, READ_CHUNK)?;
            let spans = if n == 0 {
                let detector = self.detector.take().expect("checked above");
                detector.finish().map_err(Self::vad_error)?
            } else {
                self.input_read += n as u64;
                self.held.extend(&chunk);
                detector.push(&chunk).map_err(Self::vad_error)?
            };
            for span in spans {
                self.take_span(span.start, span.end);
            }
            match &self.detector {
                Some(d) => {
                    let keep = d.keep_from();
                    self.forget_before(keep);
                }
                None => self.held.clear(),
            }
        }
        let n = max.min(self.ready.len());
        buf.extend(self.ready.drain(..n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_times_map_back_into_the_runs_they_came_from() {
        let map = TimeMap { runs: vec![(0, 16_000, 8_000), (8_000, 80_000, 16_000)] };
        assert_eq!(map.to_input(0), 16_000);
        assert_eq!(map.to_input(7_999), 23_999);
        assert_eq!(map.to_input(8_000), 80_000);
        assert_eq!(map.to_input(30_000), 96_000, "past the end: the end of the last run");
        assert!((map.to_input_secs(0.5) - 5.0).abs() < 1e-9);
        assert!((map.speech_secs() - 1.5).abs() < 1e-9);
        assert_eq!(TimeMap::default().to_input(5), 5);
        assert_eq!(map.join_before(0, 30_000), Some(8_000), "the second run starts at a join");
        assert_eq!(map.join_before(8_000, 30_000), None, "after it, none");
        assert_eq!(map.join_before(0, 7_999), None, "the first run's start is no join");
    }
}
