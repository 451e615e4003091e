#!/usr/bin/env bash
# Pipeline benchmark: a generated 60-second 720p clip whose sound is real speech
# (LibriVox readings from Debian's pocketsphinx-testdata), end to end with
# `babelcast run` (probe, encode in parallel with transcription, captions), on a
# fresh data folder (no cache). Prints the total wall time, the time until the
# video was first playable, and the ratio of the total to the sum of the standalone
# steps run one after the other: `babelcast package` (the ladder encode alone) +
# `babelcast transcribe` (transcription alone). Below 1 means the parallel stages
# paid off.
#   bench/pipeline.sh          (about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null 2>&1

work="$HOME/.cache/babelcast/bench/pipeline"
mkdir -p "$work"
clip="$work/speech-720p60s.mp4"
if [ ! -s "$clip" ]; then
  echo "bench: generating $clip"
  speech=/usr/share/pocketsphinx/test/data/librivox
  inputs=(); n=0
  for round in 1 2 3; do
    for wav in "$speech"/sense_and_sensibility_01_austen_64kb-*.wav; do inputs+=(-i "$wav"); n=$((n + 1)); done
  done
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" "${inputs[@]}" \
    -filter_complex "$(for i in $(seq 1 $n); do printf '[%d:a]' "$i"; done)concat=n=$n:v=0:a=1[speech]" \
    -map 0:v -map "[speech]" -t 60 -c:v libx264 -preset veryfast -pix_fmt yuv420p \
    -c:a aac -b:a 128k -ar 48000 "$clip.tmp.mp4"
  mv "$clip.tmp.mp4" "$clip"
fi

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.2f", a - b }'; }

rm -rf "$work/run" "$work/package" "$work/transcribe"
t=$(now)
"$babelcast_bin" run "$clip" -o "$work/run" --language en >/dev/null 2>"$work/run.log"
total=$(since "$t")
playable=$(sed -n 's/.*playable after \([0-9.]*\) s.*/\1/p' "$work/run.log")

t=$(now)
"$babelcast_bin" package "$clip" -o "$work/package" >/dev/null 2>&1
encode=$(since "$t")
t=$(now)
"$babelcast_bin" transcribe "$clip" -o "$work/transcribe" --language en >/dev/null 2>&1
transcribe=$(since "$t")

echo "bench: $(nproc) cores, 60 s of 720p30 with speech, default ladder (720p, 480p; x264 veryfast), whisper-base int8 beam 5"
awk -v total="$total" -v playable="$playable" -v e="$encode" -v s="$transcribe" 'BEGIN {
  printf "babelcast run: %.1f s total, first playable after %.1f s\n", total, playable
  printf "standalone: ladder encode %.1f s + transcription %.1f s = %.1f s\n", e, s, e + s
  printf "total / sum of standalone steps = %.3f\n", total / (e + s) }'
