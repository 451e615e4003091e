# Sourced by the other scripts (and by a developer's shell before cargo): where the
# build goes, how wide it runs, where the prebuilt CTranslate2 library is, and a
# guard that keeps the build from depending on what else is on the machine.
cache_root="$HOME/.cache/babelcast"
# The target directory lives outside the clone, so every clone, CI run and session
# shares one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache_root/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# Not exported, and not BABELCAST_*: that namespace is configuration.
babelcast_bin="$CARGO_TARGET_DIR/debug/babelcast"
# Where `babelcast models fetch` puts the models by default (babelcast_models::default_dir).
models_dir="${XDG_DATA_HOME:-$HOME/.local/share}/babelcast/models"

# CTranslate2 comes prebuilt from the pinned PyPI wheel (scripts/setup.sh fetches it):
# ct2rs's `system` feature links `-lctranslate2` from LIBRARY_PATH, and the rpath
# lets every binary and test find it at run time ($ORIGIN too, so a deployment can
# put the library beside the binary).
ct2_version=4.8.4
ct2_lib="$cache_root/ctranslate2-$ct2_version/lib"
case ":${LIBRARY_PATH:-}:" in *":$ct2_lib:"*) ;; *) export LIBRARY_PATH="$ct2_lib${LIBRARY_PATH:+:$LIBRARY_PATH}";; esac
# Added once: sourcing this file again must not change RUSTFLAGS, or cargo would
# see new flags and rebuild everything.
ct2_rpath="-C link-arg=-Wl,-rpath,\$ORIGIN:$ct2_lib"
case " ${RUSTFLAGS:-} " in
  *" $ct2_rpath "*) ;;
  *) export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$ct2_rpath";;
esac

# Every native dependency is built from its vendored source, the same on every
# machine. A build script that asks pkg-config for a library gets scripts/pkg-config-guard
# instead, which refuses (unless the library is on its allow-list) and records the
# probe; scripts/setup.sh and scripts/test.sh fail when one was recorded, so a new
# probe breaks every machine's build at once instead of only the machines that happen
# to have the library installed.
export PKG_CONFIG="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pkg-config-guard"
export PKG_CONFIG_GUARD_LOG="$cache_root/pkg-config-probes.log"
# Fails (status 1) with the list of refused probes, if any build script made one.
check_build_probes() {
  if [ -s "$PKG_CONFIG_GUARD_LOG" ]; then
    echo "build: a build script probed pkg-config for a system library (the build would differ" >&2
    echo "between machines); build it vendored, or allow it in scripts/pkg-config-guard:" >&2
    sed 's/^/  /' "$PKG_CONFIG_GUARD_LOG" >&2
    return 1
  fi
}
