#!/usr/bin/env bash
# One-cue edit benchmark: `babelcast serve` localizes the generated 60-second clip
# (bench/pipeline.sh) into es and it, then one transcript cue is edited; prints
# the translate + dub time of the full run and of the edit (bench/edit.py).
#   bench/edit.sh          (about 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null 2>&1

work="$HOME/.cache/babelcast/bench/pipeline"
clip="$work/speech-720p60s.mp4"
[ -s "$clip" ] || { bench/pipeline.sh >/dev/null; }
data="$work/edit"
rm -rf "$data"
port=$((20000 + RANDOM % 20000))
"$babelcast_bin" serve --data-dir "$data" --listen "127.0.0.1:$port" 2>"$work/edit.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "bench: the server did not start (see $work/edit.log)" >&2; exit 1; }
  sleep 0.2
done
echo "bench: $(nproc) cores, 60 s of 720p with English speech"
python3 bench/edit.py "http://127.0.0.1:$port" "$(cat "$data/api-token")" "$data/babelcast.db" "$clip"
