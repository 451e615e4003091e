#!/usr/bin/env bash
# The main job on the embedded default: set up, build, make a sample video with real
# speech, and run babelcast on it: probe it, caption it, and package it as HLS with
# its captions plus an English MP4.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh

# A 25-second 720p video whose sound track is a human reader (LibriVox recordings
# from Debian's pocketsphinx-testdata), made fresh with ffmpeg.
mkdir -p out
sample=out/sample.mp4
if [ ! -s "$sample" ]; then
  speech=/usr/share/pocketsphinx/test/data/librivox
  inputs=(); n=0
  for wav in "$speech"/sense_and_sensibility_01_austen_64kb-*.wav; do inputs+=(-i "$wav"); n=$((n + 1)); done
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=25" "${inputs[@]}" \
    -filter_complex "$(for i in $(seq 1 $n); do printf '[%d:a]' "$i"; done)concat=n=$n:v=0:a=1[speech]" \
    -map 0:v -map "[speech]" -shortest -c:v libx264 -preset veryfast -pix_fmt yuv420p \
    -c:a aac -b:a 128k -ar 48000 -metadata:s:a:0 language=eng "$sample.tmp.mp4"
  mv "$sample.tmp.mp4" "$sample"
fi

echo "== babelcast models"
"$babelcast_bin" models
echo
echo "== babelcast probe $sample"
"$babelcast_bin" probe "$sample"
echo
echo "== babelcast transcribe $sample -o out"
"$babelcast_bin" transcribe "$sample" -o out
echo
cat out/sample.vtt
echo
echo "== babelcast package $sample -o out/hls --captions en=out/sample.vtt"
"$babelcast_bin" package "$sample" -o out/hls --language en --captions en=out/sample.vtt
echo
echo "== babelcast mp4 $sample -o out/mp4/en.mp4 --captions en=out/sample.vtt"
"$babelcast_bin" mp4 "$sample" -o out/mp4/en.mp4 --language en --captions en=out/sample.vtt
echo
echo "HLS master playlist: $PWD/out/hls/master.m3u8 (serve out/hls over HTTP and open it in any HLS player)"
