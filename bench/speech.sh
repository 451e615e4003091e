#!/usr/bin/env bash
# Speech benchmark: babelcast against faster-whisper, each decoding sequentially and
# batched, on the same audio, the same CTranslate2 model files, threads and beam size,
# in one run. Prints wall time, real-time factor, peak memory and word errors (count
# and rate) for each, and the ratios.
#   bench/speech.sh [repeats] [batch] [passes]
#     repeats of the 5 LibriVox clips (default 8: 238 s of speech), the batch size of
#     both batched runs (default 8), passes over the four (default 3; ~5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh >/dev/null

venv="$HOME/.cache/babelcast/bench-venv"
if ! "$venv/bin/python" -c 'import faster_whisper' >/dev/null 2>&1; then
  echo "bench: creating $venv with faster-whisper==1.2.1"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "faster-whisper==1.2.1"
fi

exec "$venv/bin/python" bench/speech.py --babelcast "$babelcast_bin" --models "$models_dir" --repeats "${1:-8}" --batch "${2:-8}" --passes "${3:-3}"
