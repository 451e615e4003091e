#!/usr/bin/env bash
# Test fixtures that come from outside the repository, idempotent: a Python venv with
# a pinned numpy (for the numpy-only reference scripts under crates/*/tests/fixtures)
# and CTranslate2 + SentencePiece (to build a tiny translation model)
# and Whisper's own mel filter bank, taken from openai-whisper's pinned source
# distribution. A second run checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="$HOME/.cache/babelcast"
venv="$cache/venv"
fixtures="$cache/fixtures"
numpy_pin="numpy==2.3.*"
# CTranslate2's and SentencePiece's Python packages build the tiny translation model
# the CTranslate2 engine is tested on (crates/translate/tests/fixtures).
ct2_pins=("ctranslate2==4.8.5" "sentencepiece==0.2.*")
numpy_ok='import sys, numpy, ctranslate2, sentencepiece; sys.exit(not numpy.__version__.startswith("2.3.") or ctranslate2.__version__ != "4.8.5")'
whisper_pin="openai-whisper==20250625"
# sha256 of whisper/assets/mel_filters.npz in that release.
filters_sha256="7450ae70723a5ef9d341e3cee628c7cb0177f36ce42c44b7ed2bf3325f0f6d4c"
filters_ok() { echo "$filters_sha256  $1" | sha256sum --check --status; }

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "$numpy_ok" >/dev/null 2>&1; then
  echo "test-fixtures: creating $venv with $numpy_pin ${ct2_pins[*]}"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "$numpy_pin" "${ct2_pins[@]}"
fi

mkdir -p "$fixtures"
if [ ! -f "$fixtures/mel_filters.npz" ] || ! filters_ok "$fixtures/mel_filters.npz"; then
  echo "test-fixtures: fetching $whisper_pin (source distribution) for its mel filters"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --no-binary :all: "$whisper_pin" -d "$tmp"
  sdist="$(find "$tmp" -maxdepth 1 -name 'openai[-_]whisper-*.tar.gz' | head -n1)"
  if [ -z "$sdist" ]; then
    echo "test-fixtures: no openai-whisper source distribution in $tmp" >&2
    exit 1
  fi
  member="$(tar -tzf "$sdist" | grep '/whisper/assets/mel_filters\.npz$' | head -n1)"
  tar -xzf "$sdist" -C "$tmp" "$member"
  if ! filters_ok "$tmp/$member"; then
    echo "test-fixtures: $member in $(basename "$sdist") is not the pinned file (sha256 $filters_sha256)" >&2
    exit 1
  fi
  # Written under a temporary name and renamed, so an interrupted run never leaves a
  # truncated file in place.
  cp "$tmp/$member" "$fixtures/mel_filters.npz.part"
  mv "$fixtures/mel_filters.npz.part" "$fixtures/mel_filters.npz"
fi
echo "test-fixtures: ready ($venv, $fixtures/mel_filters.npz)"

# The real-browser HLS checks (tests/browser/check-hls.mjs): Debian's chromium, node
# and npm, and the pinned playwright-core, hls.js, dashjs and shaka-player from
# tests/browser/package-lock.json.
# Node's own packages (e.g. nodesource's nodejs, which carries npm) count as present.
# playwright-core stays at 1.61.1, the last release that runs on Debian 12's Node.js
# 18 (1.62 wants 20); a machine with a newer Node hid that once.
browser_missing=()
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || browser_missing+=(chromium)
command -v node >/dev/null || browser_missing+=(nodejs)
command -v npm >/dev/null || browser_missing+=(npm)
if [ "${#browser_missing[@]}" -gt 0 ]; then
  echo "test-fixtures: installing Debian packages: ${browser_missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${browser_missing[@]}"
fi
browser_dir="tests/browser"
if [ ! -d "$browser_dir/node_modules" ] || [ "$browser_dir/package-lock.json" -nt "$browser_dir/node_modules" ]; then
  echo "test-fixtures: installing $browser_dir's node packages (npm ci)"
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
  # npm ci may leave the directory's own mtime alone; mark it as up to date.
  touch "$browser_dir/node_modules"
fi
echo "test-fixtures: browser checks ready (/usr/bin/chromium, $browser_dir/node_modules)"
