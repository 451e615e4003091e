#!/usr/bin/env bash
# The main job on the embedded default: set up, build, make a sample video with real
# speech, start `babelcast serve` (SQLite + a local data folder, zero
# configuration), upload the sample, follow it until it is a captioned HLS stream,
# and print its player page's URL. The server keeps running until Ctrl-C.
#   DEMO_PORT=8080 scripts/demo.sh
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

port="${DEMO_PORT:-8080}"
data=out/data
echo "== babelcast serve --data-dir $data --listen 127.0.0.1:$port"
"$babelcast_bin" serve --data-dir "$data" --listen "127.0.0.1:$port" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "demo: the server did not start" >&2; exit 1; }
  sleep 0.2
done

echo "== uploading $sample"
token=$(cat "$data/api-token")
id=$(curl -sf -H "Authorization: Bearer $token" -F "file=@$sample" \
  -F 'options={"language":"en"}' "http://127.0.0.1:$port/v1/videos" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
[ -n "$id" ] || { echo "demo: the upload was refused" >&2; exit 1; }
echo "video $id"

state=processing
while [ "$state" = processing ]; do
  sleep 1
  status=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/videos/$id")
  state=$(printf '%s' "$status" | grep -o '"state":"[a-z_]*"' | head -1 | cut -d'"' -f4)
  stages=$(printf '%s' "$status" | grep -o '"stage":"[a-z]*","state":"[a-z]*"' | sed 's/"stage":"\([a-z]*\)","state":"\([a-z]*\)"/\1=\2/' | tr '\n' ' ')
  echo "  $state: $stages"
done
echo
echo "$status"
echo
# The status's watch_url is a viewer link: that video's player, nothing else.
watch=$(printf '%s' "$status" | sed -n 's/.*"watch_url":"\([^"]*\)".*/\1/p')
[ -n "$watch" ] || { echo "demo: the video has no player link" >&2; exit 1; }
echo "Watch it (quality, audio language, captions): http://127.0.0.1:$port$watch"
echo "The server keeps running; Ctrl-C stops it."
wait "$server"
