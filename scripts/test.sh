#!/usr/bin/env bash
# The whole test suite: set-up (packages, build, models), test fixtures and servers
# (PostgreSQL and an S3 server on loopback), formatting, lints, tests. Prints the
# wall time of each step at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

timings=()
step() {
  local name="$1" start=$SECONDS
  shift
  echo "== $name: $*"
  "$@"
  timings+=("$(printf '%-9s %6d s' "$name" $((SECONDS - start)))")
}
report() {
  local status=$?
  echo "== wall time per step:"
  printf '  %s\n' "${timings[@]+"${timings[@]}"}"
  printf '  %-9s %6d s\n' total "$SECONDS"
  exit $status
}
trap report EXIT

# The crates whose own build script compiles or probes for native code (it depends
# on cc, cmake, pkg-config, cxx-build, bindgen or vcpkg at build time), among those
# this machine's build uses (cargo tree: the features really enabled).
native_crates() {
  comm -12 <(cargo tree --workspace -e normal,build,dev --prefix none -f '{p}' \
    | awk '{ print $1 "@" substr($2, 2) }' | sort -u) <(native_candidates)
}
native_candidates() {
  cargo metadata --quiet --format-version 1 --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" \
    | python3 -c '
import json, sys
meta = json.load(sys.stdin)
tools = {"cc", "cmake", "pkg-config", "cxx-build", "bindgen", "vcpkg"}
packages = {p["id"]: p for p in meta["packages"]}
for node in meta["resolve"]["nodes"]:
    p = packages[node["id"]]
    if p["source"] is None or not any("custom-build" in t["kind"] for t in p["targets"]):
        continue
    build = {packages[d["pkg"]]["name"] for d in node["deps"]
             if any(k["kind"] == "build" for k in d["dep_kinds"])}
    if build & tools:
        print(p["name"] + "@" + p["version"])
' | sort
}

if [ "${CI:-}" = "true" ]; then
  # Cargo keys the project's own crates by their path relative to the workspace
  # root, so another clone building into the shared target directory can leave
  # artifacts that look fresh here: CI rebuilds them so it tests this clone's code.
  # shellcheck disable=SC2046
  cargo clean --quiet $(sed -n 's/^name = "\(babelcast.*\)"/-p \1/p' crates/*/Cargo.toml)
  # A native crate's build script runs once per target folder and its result is kept,
  # so a machine that built it long ago never sees that it would build differently
  # today (sentencepiece-sys compiled against Debian's too-old headers once setup
  # installed them; machines with an old build stayed green). CI reruns them all on
  # every run. Their build-dependencies (cc, cmake, cxx-build) are kept: they are
  # tools whose rebuild would only rerun every build script again, not test anything.
  # CTranslate2 itself is not among them: it comes prebuilt (scripts/fetch-ctranslate2.sh);
  # ct2rs's build script only compiles the cxx bridge and finds the library.
  natives=$(native_crates)
  echo "== ci: rebuilding from clean: $(echo $natives)"
  # shellcheck disable=SC2046
  cargo clean --quiet $(printf -- '-p %s ' $natives)
fi

step set-up scripts/setup.sh
step fixtures scripts/test-fixtures.sh
step services scripts/test-services.sh
step fmt cargo fmt --all --check
step clippy cargo clippy --quiet --workspace --all-targets -- -D warnings
step tests cargo test --workspace --no-fail-fast
check_build_probes
