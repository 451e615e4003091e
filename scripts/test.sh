#!/usr/bin/env bash
# The whole test suite: set-up (packages, build, models), formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/setup.sh
scripts/test-fixtures.sh

cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo test --workspace
