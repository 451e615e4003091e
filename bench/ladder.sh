#!/usr/bin/env bash
# Ladder benchmark, in one run on one generated 60-second 1080p30 clip:
#   babelcast   `babelcast package` (probe, one-decode ladder, measuring, master),
#               in CMAF (the default) and in MPEG-TS
#   reference   one hand-written ffmpeg command making the same rungs with the same
#               settings (one decode, split to three scalers, one HLS muxer)
#   + previews  the same command with babelcast's seek-preview branch (one frame a
#               second, 160x90, tiled into sprites) and its poster run: what
#               babelcast package does; the difference is the previews' cost
#   per-rung    each rung from its own decode: three ffmpeg runs one after another
#               (audio with the first)
#   muxers      the reference's rungs copied (no encode) into TS and into CMAF
# Prints each wall time (best of N runs for all but per-rung) and the ratios
# babelcast CMAF/TS (goal: at most 1; the median of back-to-back pairs, the best
# wall and CPU times), the muxers' CMAF/TS, babelcast/reference with
# previews (goal: at most 1.05), babelcast/per-rung (goal: clearly below 1), and
# what the previews and poster add to the reference.
#   bench/ladder.sh [runs]   (default 2; about 4 minutes a run on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null
runs="${1:-2}"

work="$HOME/.cache/babelcast/bench/ladder"
mkdir -p "$work"
src="$work/source-1080p60s.mp4"
if [ ! -s "$src" ]; then
  echo "bench: generating $src"
  ffmpeg -v error -y -nostdin -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
    -c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv420p -c:a aac -b:a 192k "$src"
fi

# The settings babelcast uses by default (crates/media/src/ladder.rs, hls.rs).
preset=veryfast
common=(-c:v libx264 -preset "$preset" -profile:v high -g 180 -keyint_min 180 -sc_threshold 0
  -force_key_frames "expr:gte(t,n_forced*6)")
rung() { # index width height kbps max level
  echo "-b:v:$1 ${4}k -maxrate:v:$1 ${5}k -bufsize:v:$1 $(( $5 * 2 ))k -level:v:$1 $6"
}
audio=(-c:a aac -b:a 128k -ar 48000 -ac 2)
hls() { # dir
  echo "-f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type mpegts -hls_flags independent_segments"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }

run_babelcast() { # cmaf|ts: prints the wall time; the CPU time (user + system, ffmpeg
  # included) goes to $work/cpu-$1, a second view less swayed by a busy machine
  rm -rf "$work/babelcast"
  local t; t=$(now)
  BABELCAST_MEDIA__LADDER__SEGMENTS="$1" python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "a").write("%.2f\n" % (r.ru_utime + r.ru_stime))' \
    "$work/cpu-$1" "$babelcast_bin" package --preset "$preset" -o "$work/babelcast" "$src"
  elapsed "$t"
}

run_reference() { # [previews]
  rm -rf "$work/reference"; mkdir -p "$work/reference/thumbs"
  local t; t=$(now)
  local split="split=3[s0][s1][s2]" previews=()
  if [ "${1:-}" = previews ]; then
    split="split=4[s0][s1][s2][st];[st]fps=fps=1/1,scale=160:90:flags=bicubic,setsar=1,tile=10x10[thumbs]"
    previews=(-map "[thumbs]" -c:v mjpeg -q:v 5 -an -f image2 "$work/reference/thumbs/sprite-%03d.jpg")
  fi
  # shellcheck disable=SC2046
  ffmpeg -nostdin -v error -y -protocol_whitelist file -i "file:$src" \
    -filter_complex "[0:0]fps=fps=30,$split;[s0]scale=1920:1080:flags=bicubic,format=yuv420p,setsar=1[v0];[s1]scale=1280:720:flags=bicubic,format=yuv420p,setsar=1[v1];[s2]scale=854:480:flags=bicubic,format=yuv420p,setsar=1[v2]" \
    -map "[v0]" $(rung 0 1920 1080 4500 5000 4.0) -map "[v1]" $(rung 1 1280 720 2700 3000 3.1) \
    -map "[v2]" $(rung 2 854 480 1100 1200 3.1) "${common[@]}" -map 0:1 "${audio[@]}" \
    $(hls) -var_stream_map "v:0,name:1080p v:1,name:720p v:2,name:480p a:0,name:audio" \
    -hls_segment_filename "$work/reference/%v/seg_%05d.ts" "$work/reference/%v/index.m3u8" \
    "${previews[@]}"
  if [ "${1:-}" = previews ]; then
    ffmpeg -nostdin -v error -y -ss 6 -protocol_whitelist file -i "file:$src" -map 0:v:0 -frames:v 1 \
      -vf "scale='min(1280,iw)':-2:flags=bicubic,setsar=1" -q:v 3 -f image2 "$work/reference/poster.jpg"
  fi
  elapsed "$t"
}

run_per_rung() {
  rm -rf "$work/per-rung"; mkdir -p "$work/per-rung"
  local t; t=$(now)
  local i=0
  for spec in "1920 1080 4500 5000 4.0" "1280 720 2700 3000 3.1" "854 480 1100 1200 3.1"; do
    # shellcheck disable=SC2086
    set -- $spec
    local extra=(-an)
    [ "$i" -eq 0 ] && extra=(-map 0:1 "${audio[@]}")
    mkdir -p "$work/per-rung/$2p"
    # shellcheck disable=SC2046
    ffmpeg -nostdin -v error -y -protocol_whitelist file -i "file:$src" \
      -filter_complex "[0:0]fps=fps=30,scale=$1:$2:flags=bicubic,format=yuv420p,setsar=1[v]" \
      -map "[v]" $(rung 0 "$1" "$2" "$3" "$4" "$5") "${common[@]}" "${extra[@]}" \
      $(hls) -hls_segment_filename "$work/per-rung/$2p/seg_%05d.ts" "$work/per-rung/$2p/index.m3u8"
    i=$((i + 1))
  done
  elapsed "$t"
}

best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The muxers alone: the reference's rungs and audio, encoded once, copied into
# HLS with MPEG-TS segments and with CMAF (fMP4) ones, best of 5 each. The
# encode is the same in both formats; this shows what the segment format itself
# costs, apart from the encode's noise on a busy machine.
run_muxer() { # ts|cmaf
  local type=mpegts ext=ts init=()
  if [ "$1" = cmaf ]; then type=fmp4; ext=m4s; init=(-hls_fmp4_init_filename init.mp4); fi
  rm -rf "$work/muxer-$1"; mkdir -p "$work/muxer-$1"
  local t; t=$(now)
  ffmpeg -nostdin -v error -y -i "$work/rungs.mkv" -map 0 -c copy -f hls -hls_time 6 -hls_playlist_type vod \
    -hls_segment_type "$type" -hls_flags independent_segments "${init[@]}" \
    -var_stream_map "v:0,name:1080p v:1,name:720p v:2,name:480p a:0,name:audio" \
    -hls_segment_filename "$work/muxer-$1/%v/seg_%05d.$ext" "$work/muxer-$1/%v/index.m3u8"
  elapsed "$t"
}

echo "bench: $(nproc) cores, x264 preset $preset, rungs 1080p/720p/480p, 60 s of 1080p30"
b=(); r=(); rp=(); bt=(); pairs=(); rm -f "$work/cpu-cmaf" "$work/cpu-ts"
for k in $(seq "$runs"); do
  r+=("$(run_reference)"); rp+=("$(run_reference previews)")
  # CMAF and TS back to back, in turns first: a machine whose speed drifts
  # between runs sways both of a pair alike, and neither always goes first.
  if [ $((k % 2)) -eq 1 ]; then
    b+=("$(run_babelcast cmaf)"); bt+=("$(run_babelcast ts)")
  else
    bt+=("$(run_babelcast ts)"); b+=("$(run_babelcast cmaf)")
  fi
  pairs+=("$(awk -v c="${b[-1]}" -v t="${bt[-1]}" 'BEGIN { printf "%.3f", c / t }')")
  echo "  run $k: reference ${r[-1]} s, with previews ${rp[-1]} s, babelcast CMAF ${b[-1]} s" \
    "(CPU $(tail -1 "$work/cpu-cmaf") s), TS ${bt[-1]} s (CPU $(tail -1 "$work/cpu-ts") s), CMAF/TS ${pairs[-1]}"
done
p=$(run_per_rung)
echo "  per-rung (3 decodes): $p s"
# The reference's rungs in one file, for the muxer arm.
ffmpeg -nostdin -v error -y -i "$work/reference/1080p/index.m3u8" -i "$work/reference/720p/index.m3u8" \
  -i "$work/reference/480p/index.m3u8" -i "$work/reference/audio/index.m3u8" \
  -map 0:v -map 1:v -map 2:v -map 3:a -c copy "$work/rungs.mkv"
mt=(); mc=()
for _ in 1 2 3 4 5; do mt+=("$(run_muxer ts)"); mc+=("$(run_muxer cmaf)"); done
mtt=$(best "${mt[@]}"); mcc=$(best "${mc[@]}")
echo "  muxers alone (best of 5): TS $mtt s, CMAF $mcc s;" \
  "segments TS $(du -sb "$work/muxer-ts" | cut -f1) bytes, CMAF $(du -sb "$work/muxer-cmaf" | cut -f1) bytes"
bb=$(best "${b[@]}"); rr=$(best "${r[@]}"); rpp=$(best "${rp[@]}"); btt=$(best "${bt[@]}")
printf 'babelcast %.2f s | reference single command %.2f s (%.2f s with previews) | per-rung decodes %.2f s\n' \
  "$bb" "$rr" "$rpp" "$p"
cc=$(best $(cat "$work/cpu-cmaf")); ct=$(best $(cat "$work/cpu-ts")); pm=$(median "${pairs[@]}")
awk -v b="$bb" -v r="$rr" -v rp="$rpp" -v p="$p" -v t="$btt" -v cc="$cc" -v ct="$ct" -v pm="$pm" \
  -v mt="$mtt" -v mc="$mcc" 'BEGIN {
  printf "babelcast CMAF / TS = %.3f wall (median of the back-to-back pairs), %.3f best wall, %.3f CPU (goal <= 1)\n", pm, b / t, cc / ct
  printf "muxers alone CMAF / TS = %.3f (the same encoded rungs copied into each format)\n", mc / mt
  printf "babelcast / reference with previews = %.3f (goal <= 1.05)\n", b / rp
  printf "babelcast / per-rung  = %.3f (goal < 1)\n", b / p
  printf "previews and poster: %.2f s (%.1f%% of the reference encode)\n", rp - r, (rp - r) / r * 100 }'
