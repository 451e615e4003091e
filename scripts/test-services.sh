#!/usr/bin/env bash
# The servers the scale-out tests use, started on loopback, idempotent (a second run
# checks and returns): PostgreSQL from Debian's packages on 127.0.0.1:54329, a
# throwaway cluster with trust authentication for its `postgres` user (tests create
# a database each). Its files live under /var/tmp/babelcast-test; `stop` stops it.
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

if [ "${1:-}" = "stop" ]; then
  [ -f "$pg_data/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop || true
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
