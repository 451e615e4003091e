# Sourced by the other scripts: where the build goes and how wide it runs.
# The CTranslate2 + oneDNN build takes 10-25 minutes from clean on 2 cores, so the
# target directory lives outside the clone and every clone, CI run and session
# shares it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/babelcast/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# Not exported, and not BABELCAST_*: that namespace is configuration.
babelcast_bin="$CARGO_TARGET_DIR/debug/babelcast"
