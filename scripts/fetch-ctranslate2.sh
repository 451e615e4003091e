#!/usr/bin/env bash
# The CTranslate2 library babelcast links (ct2rs's `system` feature), idempotent:
# the shared library of the pinned `ctranslate2` PyPI wheel, sha256-checked, into
# ~/.cache/babelcast/ctranslate2-<version>/lib (scripts/env.sh puts it on the link
# path and in the binaries' rpath). The wheel is built with Intel's MKL and oneDNN
# kernels and the C++11 string ABI (manylinux_2_28), which the cxx bridge needs;
# its version is the one ct2rs 0.10.3 bundles the headers of. Building CTranslate2
# from source instead took 25-45 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

arch="$(uname -m)"
case "$arch" in
  x86_64) wheel_sha256=1037b3f51d18f1546120686670d71fcdaf85a0500fffccc56d8439ded5d284e5 ;;
  *) echo "fetch-ctranslate2: no pinned CTranslate2 wheel for $arch (only x86_64)" >&2; exit 1 ;;
esac
marker="$ct2_lib/.wheel-sha256"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wheel_sha256" ] && [ -e "$ct2_lib/libctranslate2.so" ]; then
  exit 0
fi

echo "fetch-ctranslate2: fetching ctranslate2==$ct2_version ($arch wheel) for its library"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The library does not depend on the Python version: ask for one wheel, always the same.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform "manylinux_2_28_$arch" "ctranslate2==$ct2_version" -d "$tmp"
wheel="$(find "$tmp" -maxdepth 1 -name "ctranslate2-$ct2_version-*.whl" | head -n1)"
if [ -z "$wheel" ] || ! echo "$wheel_sha256  $wheel" | sha256sum --check --status; then
  echo "fetch-ctranslate2: the downloaded wheel is not the pinned one (sha256 $wheel_sha256)" >&2
  exit 1
fi
python3 -m zipfile -e "$wheel" "$tmp/wheel"

staging="$ct2_lib.part"
rm -rf "$staging"
mkdir -p "$staging"
# libctranslate2-<hash>.so.<version> and the libgomp it names (found through its
# own $ORIGIN rpath); the link name points at the first.
cp "$tmp"/wheel/ctranslate2.libs/*.so* "$staging/"
lib="$(cd "$staging" && ls libctranslate2-*.so."$ct2_version")"
ln -s "$lib" "$staging/libctranslate2.so"
# ct2rs 0.10.3's `system` mode also names, on Linux, static libraries that a
# shared libctranslate2 already contains (cpu_features) or that a CPU-only build
# never calls (the CUDA ones). Empty archives satisfy those names and add nothing.
for name in cpu_features cublas_static cublasLt_static culibos; do
  ar rc "$staging/lib$name.a"
done
echo "$wheel_sha256" > "$staging/.wheel-sha256"
rm -rf "$ct2_lib"
mv "$staging" "$ct2_lib"
echo "fetch-ctranslate2: $ct2_lib/$lib"
