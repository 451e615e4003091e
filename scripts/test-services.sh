#!/usr/bin/env bash
# The servers the scale-out tests use, started on loopback, idempotent (a second run
# checks and returns): PostgreSQL from Debian's packages on 127.0.0.1:54329, a
# throwaway cluster with trust authentication for its `postgres` user (tests create
# a database each), and s3s-fs, an S3-compatible server over a folder, on
# 127.0.0.1:39000 with the bucket `babelcast-test` and a fixed test key (tests use a
# prefix each). s3s-fs is a separate process speaking S3 over HTTP that checks
# SigV4 signatures (headers and presigned URLs), with multipart uploads and ETags;
# tools/s3-test-server wraps it to put the ETags in its listings too, and is
# installed once with cargo into ~/.cache/babelcast/tools (about 3 minutes on 2
# cores, where Garage took about an hour; see docs/deployment.md).
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

# s3s-fs (with ETags in its listings: tools/s3-test-server), built once with cargo;
# rebuilt when its sources change.
server_src=tools/s3-test-server
tools="$HOME/.cache/babelcast/tools"
s3s="$tools/bin/s3-test-server"
s3s_stamp="$(cat "$server_src/Cargo.toml" "$server_src/Cargo.lock" "$server_src"/src/*.rs | sha256sum | cut -d' ' -f1)"
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

if [ "$(cat "$tools/s3-test-server.stamp" 2>/dev/null)" != "$s3s_stamp" ] || [ ! -x "$s3s" ]; then
  echo "test-services: building the S3 test server (s3s-fs) with cargo (once; about 3 minutes on 2 cores)"
  # Its own target folder (its dependency versions are not the project's), and none
  # of the project's build settings (scripts/env.sh): it is a tool, not a part.
  env -u RUSTFLAGS -u PKG_CONFIG -u LIBRARY_PATH \
    CARGO_TARGET_DIR="$HOME/.cache/babelcast/s3s-target" cargo install --path "$server_src" \
    --locked --root "$tools" -j2 --force
  echo "$s3s_stamp" > "$tools/s3-test-server.stamp"
fi
# A bucket is a folder of the root.
mkdir -p "$s3_dir/root/$s3_bucket"
s3_up() { curl -s -o /dev/null "http://127.0.0.1:$s3_port/"; }
if ! s3_up; then
  S3_ACCESS_KEY="$s3_key_id" S3_SECRET_KEY="$s3_secret" \
    nohup "$s3s" "127.0.0.1:$s3_port" "$s3_dir/root" >"$s3_dir/server.log" 2>&1 &
  echo $! > "$s3_dir/pid"
  for _ in $(seq 100); do s3_up && break; sleep 0.1; done
  s3_up || { echo "test-services: s3s-fs did not start (see $s3_dir/server.log)" >&2; exit 1; }
fi
echo "test-services: S3 (s3s-fs) at http://127.0.0.1:$s3_port (bucket $s3_bucket, any region)"
