#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 (Debian's packaged server), given to the tests
# as ORION_TEST_DATABASE_URL. The product supports 15 and 16; the default suite runs on embedded 16.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL 15 server binaries not found; installing Debian's postgresql-15" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null) || {
    echo "cannot install postgresql-15" >&2
    exit 1
  }
fi
dir=$(mktemp -d /tmp/orion-pg15-XXXXXX)
chmod 755 "$dir"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
password="pg15-$(node -e "console.log(require('crypto').randomBytes(9).toString('hex'))")"
echo "$password" > "$dir/pw"
as_pg() { if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
as_pg "$bin/initdb -D '$dir/data' -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile='$dir/pw' >/dev/null"
as_pg "$bin/pg_ctl -D '$dir/data' -l '$dir/log' -w -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >/dev/null"
trap 'as_pg "$bin/pg_ctl -D \"$dir/data\" -m immediate stop >/dev/null" || true; rm -rf "$dir"' EXIT
export ORION_TEST_DATABASE_URL="postgres://postgres:$password@127.0.0.1:$port/postgres"
"$@"
