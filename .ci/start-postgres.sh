#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the store tests, on 127.0.0.1 with a temp data dir.
# Prints one line for the caller to eval:  export LORE_TEST_POSTGRES_URL=postgresql+psycopg://...
# Everything else goes to stderr. `--stop` stops the server and removes its data.
# Installs PostgreSQL with apt-get when no initdb/pg_ctl is found.
set -euo pipefail

STATE_DIR="${LORE_CI_POSTGRES_DIR:-/tmp/lore-ci-postgres}"
DATABASE=lore_test

log() { echo "start-postgres: $*" >&2; }

find_bin_dir() {
    local found
    found="$(command -v initdb 2>/dev/null || true)"
    for dir in ${found:+"$(dirname "$found")"} /usr/local/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# initdb refuses to run as root: run the server tools as the postgres user then.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [ "${1:-}" = "--stop" ]; then
    if [ -f "$STATE_DIR/data/PG_VERSION" ]; then
        as_postgres "$(find_bin_dir)/pg_ctl" -D "$STATE_DIR/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$STATE_DIR"
    exit 0
fi

if ! BIN_DIR="$(find_bin_dir)"; then
    log "PostgreSQL not found; installing it with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
    BIN_DIR="$(find_bin_dir)" || { log "initdb/pg_ctl still not found after installing"; exit 1; }
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin postgres
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

bash "$0" --stop  # a server left over from an earlier run
mkdir -p "$STATE_DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$STATE_DIR"; fi

log "initdb in $STATE_DIR/data ($BIN_DIR)"
as_postgres "$BIN_DIR/initdb" -D "$STATE_DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-sync >&2
as_postgres "$BIN_DIR/pg_ctl" -D "$STATE_DIR/data" -l "$STATE_DIR/server.log" -w -t 60 \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -k $STATE_DIR -c fsync=off" start >&2

python3 - "$PORT" "$DATABASE" <<'PY' >&2
import sys

import psycopg

port, name = sys.argv[1], sys.argv[2]
with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as db:
    db.execute(f'CREATE DATABASE "{name}"')
print(f"created database {name} on port {port}")
PY

echo "export LORE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DATABASE"
