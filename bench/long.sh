#!/usr/bin/env bash
# Long-input benchmark (run it in the background; never in test.sh or CI): a
# generated video of MINUTES minutes (default 120) with a small picture and
# speech that varies (espeak-ng reading sentences that never repeat, LibriVox
# readings between; bench/long.py), so no cache can help, through `babelcast run
# --to es`. Prints the wall time per stage, per minute of input, and the peak
# resident memory of the whole process tree (babelcast and the ffmpeg, espeak-ng
# and apertium it runs), sampled every 0.5 s.
#   bench/long.sh [MINUTES]      (about an hour for 120 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null 2>&1

minutes="${1:-120}"
work="$HOME/.cache/babelcast/bench/long"
mkdir -p "$work"
clip="$work/talk-${minutes}min.mp4"
if [ ! -s "$clip" ]; then
  echo "bench: generating $minutes minutes of speech and picture"
  python3 bench/long.py speech "$work/speech.wav" "$minutes"
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x180:rate=15" -i "$work/speech.wav" -shortest \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 96k -ar 48000 "$clip.tmp.mp4"
  mv "$clip.tmp.mp4" "$clip"
  rm -f "$work/speech.wav"
fi
cat > "$work/babelcast.toml" <<TOML
models_dir = "$HOME/.local/share/babelcast/models"
[media.ladder]
preset = "veryfast"
[[media.ladder.rungs]]
height = 180
bitrate_kbps = 200
max_kbps = 300
TOML
rm -rf "$work/data"
t=$(date +%s.%N)
(cd "$work" && exec "$babelcast_bin" run "$clip" -o "$work/data" --language en --to es >/dev/null 2>"$work/run.log") &
run=$!
peak=$(python3 bench/long.py watch "$run")
wait "$run" || echo "bench: babelcast run exited with $? (see $work/run.log)"
total=$(awk -v a="$(date +%s.%N)" -v b="$t" 'BEGIN { printf "%.0f", a - b }')
echo "bench: $(nproc) cores, $minutes minutes of 320x180 video with varied English speech, target es"
grep -E '^  [a-z]' "$work/run.log" | awk -v m="$minutes" '{ printf "  %-13s %8.1f s = %6.2f s per minute of input\n", $1, $2, $2 / m }'
grep -E '^qa: |^warning' "$work/run.log" | head -5
echo "total wall time: $total s; peak memory of the process tree: $peak MiB (goal: at most 1536)"
