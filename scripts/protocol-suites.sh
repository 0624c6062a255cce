#!/usr/bin/env bash
# Runs the official protocol test suites (socketio/engine.io-protocol and
# socketio/socket.io-protocol, their test-suite/ folders) against examples/conformance_server,
# as shared/interop/PROTOCOL-SUITES.md describes. The suites are not part of this repository:
# extract each test-suite/ folder somewhere outside it and pass the two paths.
#
#   scripts/protocol-suites.sh ENGINE_IO_SUITE_DIR SOCKET_IO_SUITE_DIR [RUNS]
#
# The suites talk to http://localhost:3000, so port 3000 must be free. Each suite runs RUNS times
# (default 3). The socket.io suite is also run from a temporary copy whose waitFor() queues
# messages: the stock one loses a frame that arrives in the same TCP read as the one before
# (upstream socketio/socket.io-protocol#32), which fails a few tests at random against any
# server, the Node reference included.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EIO_SUITE="${1:?engine.io-protocol test-suite folder}"
SIO_SUITE="${2:?socket.io-protocol test-suite folder}"
RUNS="${3:-3}"

cargo build --release --example conformance_server --manifest-path "$ROOT/Cargo.toml"
for suite in "$EIO_SUITE" "$SIO_SUITE"; do
  [ -d "$suite/node_modules" ] || (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error)
done

PORT=3000 HOST=127.0.0.1 "$ROOT/target/release/examples/conformance_server" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$SIO_SUITE/test-suite-queued.js"' EXIT
for _ in $(seq 1 50); do
  (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null && break
  sleep 0.1
done

# The workaround: waitFor(socket, "message") takes messages from a queue filled by one listener.
python3 - "$SIO_SUITE/test-suite.js" "$SIO_SUITE/test-suite-queued.js" <<'PY'
import sys
source = open(sys.argv[1]).read()
marker = "function waitFor(socket, eventType) {"
queued = '''function waitFor(socket, eventType) {
  if (eventType === "message") {
    if (!socket.__queue) {
      socket.__queue = [];
      socket.__waiters = [];
      socket.addEventListener("message", (event) => {
        const waiter = socket.__waiters.shift();
        if (waiter) waiter(event); else socket.__queue.push(event);
      });
    }
    if (socket.__queue.length) return Promise.resolve(socket.__queue.shift());
    return new Promise((resolve) => socket.__waiters.push(resolve));
  }
'''
assert marker in source, "waitFor not found: the suite changed"
open(sys.argv[2], "w").write(source.replace(marker, queued, 1))
PY

summary() { grep -E "^\s+[0-9]+ (passing|failing)" | tr -s ' ' | tr '\n' ' '; }
for run in $(seq 1 "$RUNS"); do
  echo "engine.io-protocol run $run: $(cd "$EIO_SUITE" && npx mocha test-suite.js 2>&1 | summary)"
  echo "socket.io-protocol run $run (stock): $(cd "$SIO_SUITE" && npx mocha test-suite.js 2>&1 | summary)"
  echo "socket.io-protocol run $run (queued waitFor): $(cd "$SIO_SUITE" && npx mocha test-suite-queued.js 2>&1 | summary)"
done
