#!/usr/bin/env bash
# Set-up of a machine for babelcast (Debian 12, x86_64), idempotent: installs the
# Debian packages babelcast and its tests use, builds babelcast, and fetches the
# pinned models into the per-user data folder (~/.local/share/babelcast/models). A second run checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# What babelcast drives (ffmpeg, espeak-ng, apertium + en/es data), what the
# native builds need (cmake and a C++ compiler, for the vendored SentencePiece and
# the CTranslate2 bindings), what the tests and the demo use (pocketsphinx-testdata:
# real speech with transcripts; sox), pip to fetch models and the CTranslate2
# library, a font for captions burned into video (libass needs one), curl for the
# demo's uploads (and the service tests), procps for the crash test's pgrep. No
# -dev package of a library a crate could link instead of its vendored copy: see
# scripts/pkg-config-guard.
packages=(
  ffmpeg espeak-ng apertium apertium-eng-spa apertium-spa-ita apertium-spa-cat fonts-dejavu-core curl procps
  cmake build-essential git ca-certificates
  pocketsphinx-testdata sox python3 python3-pip python3-venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A python3 that already has pip and venv (e.g. pyenv's) makes Debian's unnecessary.
if [ "${#missing[@]}" -gt 0 ] && command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 \
    && python3 -m venv --help >/dev/null 2>&1; then
  keep=(); for p in "${missing[@]}"; do case "$p" in python3|python3-pip|python3-venv) ;; *) keep+=("$p");; esac; done
  missing=("${keep[@]+"${keep[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node's npm fetches the pinned hls.js and dash.js that the player page embeds
# (web/). Any node/npm on the machine will do (NodeSource's nodejs carries npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing Debian packages: nodejs npm"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -f web/node_modules/hls.js/dist/hls.min.js ] || [ ! -f web/node_modules/dashjs/package.json ] \
  || [ web/package-lock.json -nt web/node_modules ]; then
  echo "setup: installing web/'s pinned hls.js and dash.js (npm ci)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  touch web/node_modules
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is not installed: install a stable Rust toolchain (1.88 or newer) first" >&2
  exit 1
fi

scripts/fetch-ctranslate2.sh

echo "setup: building babelcast (target directory: $CARGO_TARGET_DIR)"
mkdir -p "$(dirname "$PKG_CONFIG_GUARD_LOG")"
: > "$PKG_CONFIG_GUARD_LOG"
cargo build -p babelcast
check_build_probes

echo "setup: checking models in $models_dir"
"$babelcast_bin" models fetch
