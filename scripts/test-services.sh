#!/usr/bin/env bash
# The servers the scale-out tests use, started on loopback, idempotent (a second run
# checks and returns): PostgreSQL from Debian's packages on 127.0.0.1:54329, a
# throwaway cluster with trust authentication for its `postgres` user (tests create
# a database each), and Garage, an S3-compatible object store, on 127.0.0.1:39000
# with the bucket `babelcast-test` and a fixed test key (tests create a bucket or a
# prefix each). Garage is a Rust crate: installed once with cargo into
# ~/.cache/babelcast/tools (its first build takes about an hour on 2 cores).
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

garage_version=2.5.0
tools="$HOME/.cache/babelcast/tools"
garage="$tools/bin/garage"
garage_dir="$state/garage"
garage_conf="$garage_dir/garage.toml"
# The test key: Garage's key ids are GK and 24 hex digits, secrets 64 hex digits.
s3_key_id=GK0123456789abcdef01234567
s3_secret=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
s3_bucket=babelcast-test

if [ "${1:-}" = "stop" ]; then
  [ -f "$pg_data/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop || true
  [ -f "$garage_dir/pid" ] && kill "$(cat "$garage_dir/pid")" 2>/dev/null || true
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

if ! "$garage" --version 2>/dev/null | grep -q "$garage_version"; then
  echo "test-services: building Garage $garage_version with cargo (once; about an hour on 2 cores)"
  # Its own target folder: Garage's dependency versions are not the project's.
  CARGO_TARGET_DIR="$HOME/.cache/babelcast/garage-target" cargo install garage \
    --version "$garage_version" --locked --no-default-features --features bundled-libs,sqlite \
    --root "$tools" -j2
fi
mkdir -p "$garage_dir"
if [ ! -f "$garage_conf" ]; then
  cat > "$garage_conf" <<CONF
metadata_dir = "$garage_dir/meta"
data_dir = "$garage_dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:39001"
rpc_public_addr = "127.0.0.1:39001"
rpc_secret = "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:39000"
root_domain = ".s3.garage.localhost"
CONF
fi
export GARAGE_CONFIG_FILE="$garage_conf"
if ! "$garage" status >/dev/null 2>&1; then
  nohup "$garage" server >"$garage_dir/server.log" 2>&1 &
  echo $! > "$garage_dir/pid"
  for _ in $(seq 100); do "$garage" status >/dev/null 2>&1 && break; sleep 0.2; done
fi
# A single-node layout, once.
if "$garage" layout show 2>/dev/null | grep -q "No nodes currently have a role"; then
  node="$("$garage" node id -q | cut -d@ -f1)"
  "$garage" layout assign -z dc1 -c 1G "$node" >/dev/null
  "$garage" layout apply --version 1 >/dev/null
fi
for _ in $(seq 50); do "$garage" bucket list >/dev/null 2>&1 && break; sleep 0.2; done
"$garage" key info "$s3_key_id" >/dev/null 2>&1 \
  || "$garage" key import --yes -n babelcast-test "$s3_key_id" "$s3_secret" >/dev/null
"$garage" bucket info "$s3_bucket" >/dev/null 2>&1 || "$garage" bucket create "$s3_bucket" >/dev/null
"$garage" bucket allow --read --write --owner "$s3_bucket" --key "$s3_key_id" >/dev/null
echo "test-services: Garage S3 at http://127.0.0.1:39000 (bucket $s3_bucket, region garage)"
