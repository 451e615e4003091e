#!/usr/bin/env bash
# Re-timing benchmark: the generated 60-second clip with real English speech
# (bench/pipeline.sh) is transcribed to SRT; every cue is moved 20 s late; then
# `babelcast run --transcript en=late.srt --retime` moves the cues back to the
# speech. Prints the transcription and the re-timing (import) stage per minute
# of audio, and how far the re-timed cues start from the transcribed ones.
#   bench/retime.sh          (about 1 minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null 2>&1

work="$HOME/.cache/babelcast/bench/pipeline"
clip="$work/speech-720p60s.mp4"
[ -s "$clip" ] || { bench/pipeline.sh >/dev/null; }
out="$work/retime"
rm -rf "$out" && mkdir -p "$out"
"$babelcast_bin" transcribe "$clip" --language en --format srt -o "$out" >/dev/null 2>&1
python3 - "$out/speech-720p60s.srt" "$out/late.srt" <<'PY'
import re, sys
def shift(m):
    h, mi, s, ms = map(int, m.groups())
    t = ((h * 60 + mi) * 60 + s) * 1000 + ms + 20_000
    return f"{t // 3600000:02}:{t // 60000 % 60:02}:{t // 1000 % 60:02},{t % 1000:03}"
text = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w", encoding="utf-8").write(re.sub(r"(\d+):(\d+):(\d+),(\d+)", shift, text))
PY
"$babelcast_bin" run "$clip" -o "$out/data" --transcript "en=$out/late.srt" --retime >/dev/null 2>"$out/run.log"
minutes=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$clip" | awk '{ print $1 / 60 }')
echo "bench: $(nproc) cores, 60 s of English speech, every cue of its own transcript 20 s late"
grep -E '^  (transcribe|import) ' "$out/run.log" | awk -v m="$minutes" '{ printf "  %-11s %6.2f s = %.2f s per minute of audio\n", $1, $2, $2 / m }'
python3 - "$out/speech-720p60s.srt" "$out/data" <<'PY'
import glob, json, re, sys
def starts(text):
    return [((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)
            for h, m, s, ms in re.findall(r"(\d+):(\d+):(\d+)[,.](\d+) -->", text)]
reference = starts(open(sys.argv[1], encoding="utf-8").read())
transcript = json.load(open(glob.glob(f"{sys.argv[2]}/videos/*/transcript.json")[0]))
found = [s for s in transcript["retimed"] if s["found"]]
cues = [c["start_ms"] for c in transcript["cues"]]
errors = sorted(min(abs(c - r) for c in cues) for r in reference)
print(f"  cues found: {len(found)} of {len(transcript['retimed'])}; "
      f"start error vs the transcribed cues: median {errors[len(errors) // 2]} ms, max {errors[-1]} ms")
PY
