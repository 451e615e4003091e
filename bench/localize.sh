#!/usr/bin/env bash
# Localization benchmark: the generated 60-second 720p clip with real English
# speech (see bench/pipeline.sh), end to end with `babelcast run --to es,it` on a
# fresh data folder: captions, translation (Apertium), dubs (espeak-ng, fitted to
# the cue timings, ducked under the original) and the one HLS package. Prints the
# time per stage, the total wall time and each dub's QA summary (share of cues that
# fit without speed-up, the highest speed factor); then each dub stage again, alone
# and with cold dub caches, per video-minute.
#   bench/localize.sh          (about 1 minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null 2>&1

work="$HOME/.cache/babelcast/bench/pipeline"
clip="$work/speech-720p60s.mp4"
[ -s "$clip" ] || { bench/pipeline.sh >/dev/null; }
rm -rf "$work/localize"
t=$(date +%s.%N)
"$babelcast_bin" run "$clip" -o "$work/localize" --language en --to es,it >/dev/null 2>"$work/localize.log"
total=$(awk -v a="$(date +%s.%N)" -v b="$t" 'BEGIN { printf "%.1f", a - b }')
echo "bench: $(nproc) cores, 60 s of 720p30 with English speech, targets es and it"
grep -E '^video |^  |^qa: ' "$work/localize.log"
echo "total wall time: $total s"

# Each dub stage alone with cold dub and voice caches: the same clip again on
# the same data folder with one worker, so the ladder, the transcript and the
# translations come from the cache and the two dubs run one after the other.
rm -rf "$work/localize/cache/dub" "$work/localize/cache/voice"
BABELCAST_SERVER__WORKERS=1 "$babelcast_bin" run "$clip" -o "$work/localize" --language en --to es,it \
  >/dev/null 2>"$work/localize-dubs.log"
echo "each dub stage alone, cold caches (goal: at most 3 s per video-minute):"
grep -E '^  dub-' "$work/localize-dubs.log" | awk '{ printf "  %-8s %5.1f s = %.1f s per video-minute\n", $1, $2, $2 }'
grep -E '^qa: ' "$work/localize-dubs.log"
