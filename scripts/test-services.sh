#!/usr/bin/env bash
# The servers the scale-out tests use, started on loopback, idempotent (a second run
# checks and returns): PostgreSQL from Debian's packages on 127.0.0.1:54329, a
# throwaway cluster with trust authentication for its `postgres` user (tests create
# a database each), and s3s-fs, an S3-compatible server over a folder, on
# 127.0.0.1:39000 with the bucket `babelcast-test` and a fixed test key (tests use a
# prefix each). s3s-fs is a separate process speaking S3 over HTTP that checks
# SigV4 signatures (headers and presigned URLs), with multipart uploads and ETags;
# it is installed once with cargo into ~/.cache/babelcast/tools (about 3 minutes on
# 2 cores, where Garage took about an hour; see docs/deployment.md).
# Their files live under /var/tmp/babelcast-test; `stop` stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

state=/var/tmp/babelcast-test
pg_port=54329
pg_data="$state/pg"

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo "test-services: installing Debian packages: postgresql"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql
fi
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
# PostgreSQL refuses to run as root: as root, run it as Debian's postgres user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

s3s_version=0.14.1
tools="$HOME/.cache/babelcast/tools"
s3s="$tools/bin/s3s-fs"
s3_dir="$state/s3"
s3_port=39000
# The test key (the format Garage used, which the tests' configs keep).
s3_key_id=GK0123456789abcdef01234567
s3_secret=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
s3_bucket=babelcast-test

if [ "${1:-}" = "stop" ]; then
  [ -f "$pg_data/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop || true
  [ -f "$s3_dir/pid" ] && kill "$(cat "$s3_dir/pid")" 2>/dev/null || true
  exit 0
fi

mkdir -p "$state"
chmod 755 "$state"
if [ ! -f "$pg_data/PG_VERSION" ]; then
  echo "test-services: creating a PostgreSQL cluster in $pg_data"
  rm -rf "$pg_data"
  mkdir -p "$pg_data"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pg_data"
  as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 >/dev/null
fi
if ! "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
  # fsync off: a test server's data is thrown away, and it makes the tests faster.
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 start \
    -o "-p $pg_port -k $pg_data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >/dev/null
fi
echo "test-services: PostgreSQL at postgres://postgres@127.0.0.1:$pg_port"

if ! "$s3s" --version 2>/dev/null | grep -q "$s3s_version"; then
  echo "test-services: building s3s-fs $s3s_version with cargo (once; about 3 minutes on 2 cores)"
  # Its own target folder (its dependency versions are not the project's), and none
  # of the project's build settings (scripts/env.sh): it is a tool, not a part.
  env -u RUSTFLAGS -u PKG_CONFIG -u LIBRARY_PATH \
    CARGO_TARGET_DIR="$HOME/.cache/babelcast/s3s-target" cargo install s3s-fs \
    --version "$s3s_version" --locked --features binary --root "$tools" -j2
fi
# A bucket is a folder of the root.
mkdir -p "$s3_dir/root/$s3_bucket"
s3_up() { curl -s -o /dev/null "http://127.0.0.1:$s3_port/"; }
if ! s3_up; then
  nohup "$s3s" --host 127.0.0.1 --port "$s3_port" --access-key "$s3_key_id" --secret-key "$s3_secret" \
    "$s3_dir/root" >"$s3_dir/server.log" 2>&1 &
  echo $! > "$s3_dir/pid"
  for _ in $(seq 100); do s3_up && break; sleep 0.1; done
  s3_up || { echo "test-services: s3s-fs did not start (see $s3_dir/server.log)" >&2; exit 1; }
fi
echo "test-services: S3 (s3s-fs) at http://127.0.0.1:$s3_port (bucket $s3_bucket, any region)"
