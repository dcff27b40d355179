#!/usr/bin/env bash
# Start a throwaway Chroma server (`chroma run`, installed with chromadb) for the tests that
# share vectors between processes, on 127.0.0.1 with a temp data dir.
# Prints one line for the caller to eval:  export LORE_TEST_CHROMA_URL=http://127.0.0.1:PORT
# Everything else goes to stderr. `--stop` stops the server and removes its data.
set -euo pipefail

STATE_DIR="${LORE_CI_CHROMA_DIR:-/tmp/lore-ci-chroma}"

log() { echo "start-chroma: $*" >&2; }

if [ "${1:-}" = "--stop" ]; then
    if [ -f "$STATE_DIR/pid" ]; then
        pid="$(cat "$STATE_DIR/pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$STATE_DIR"
    exit 0
fi

if ! command -v chroma >/dev/null 2>&1; then
    log "the chroma command is not on PATH: install the project first (pip install -e .)"
    exit 1
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

bash "$0" --stop  # a server left over from an earlier run
mkdir -p "$STATE_DIR"
log "chroma run on port $PORT, data in $STATE_DIR/data"
nohup chroma run --path "$STATE_DIR/data" --host 127.0.0.1 --port "$PORT" >"$STATE_DIR/server.log" 2>&1 &
echo $! >"$STATE_DIR/pid"

python3 - "$PORT" "$(cat "$STATE_DIR/pid")" <<'PY' >&2
import os
import sys
import time
import urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("chroma run exited; see its log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as reply:
            if reply.status == 200:
                print(f"Chroma server answering on port {port}")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"chroma run did not answer on port {port} within 60 s")
PY

echo "export LORE_TEST_CHROMA_URL=http://127.0.0.1:$PORT"
