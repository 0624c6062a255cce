#!/usr/bin/env bash
# Ferrio's one test command. Runs everything on a fresh Debian machine, installing what it needs:
#
#   1. system packages (apt, only the missing ones) and the toolchain check
#   2. npm ci in tests/interop          3. the Python venv (.venv) + pip install
#   4. cargo fmt --check                5. cargo clippy -D warnings
#   6. cargo test --workspace           7. cargo build --release --examples
#      then the fuzz smoke run (scripts/fuzz.sh smoke: every fuzz target for 20,000 runs)
#   8. Node interop tests (node --test tests/interop/*.test.mjs)
#   9. Python interop tests (pytest tests/interop/python)
#  10. UI tests: npm ci in tests/ui, then node --test tests/ui/*.test.mjs in Debian's headless
#      Chromium (/usr/bin/chromium, installed with the system packages)
#
# Every phase runs (a failure does not hide the others' results); the exit status is non-zero if
# any phase failed. An interop or UI phase is skipped, loudly, when an example binary it needs
# does not exist, except under CI=true, where that is a failure. Logs: target/test-logs/.
#
# Environment: CI=true (strict), SKIP_APT=1 (do not touch system packages),
# CARGO_TARGET_DIR (honoured by the interop tests too).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CI="${CI:-false}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
EXAMPLES_DIR="$TARGET_DIR/release/examples"
LOG_DIR="$ROOT/target/test-logs"
INTEROP_DIR="$ROOT/tests/interop"
UI_DIR="$ROOT/tests/ui"
VENV="$ROOT/.venv"
mkdir -p "$LOG_DIR"

# System packages the tests need, as "command-or-path:debian-package". Only the missing ones are
# installed. Add here when a test needs one, e.g. "redis-server:redis-server", "nginx:nginx",
# "chromium:chromium".
APT_NEEDS=(
  "curl:curl"
  "git:git"
  "/usr/bin/chromium:chromium"
  "nginx:nginx"
  "g++:g++"
  "redis-server:redis-server"
  "systemd-analyze:systemd"
)

# ---------------------------------------------------------------------------------------------
RUN_START=$(date +%s)
declare -a PHASES=() STATUSES=() DURATIONS=() NOTES=()
TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
section() {
  echo
  bold "======================================================================================"
  bold "== $*"
  bold "======================================================================================"
}
banner() {
  echo
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  for line in "$@"; do echo "!!! $line"; done
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
}
record() { # name status seconds note
  PHASES+=("$1")
  STATUSES+=("$2")
  DURATIONS+=("$3")
  NOTES+=("${4:-}")
}
status_of() { # name -> status ("" if the phase has not run)
  local i
  for i in "${!PHASES[@]}"; do
    if [ "${PHASES[$i]}" = "$1" ]; then
      echo "${STATUSES[$i]}"
      return
    fi
  done
}

# run_phase NAME TIMEOUT_SECONDS CMD...: runs CMD with its output shown and saved to
# target/test-logs/NAME.log, bounded by TIMEOUT_SECONDS.
run_phase() {
  local name="$1" limit="$2"
  shift 2
  section "$name"
  echo "\$ $*"
  local start rc log="$LOG_DIR/$name.log"
  start=$(date +%s)
  if declare -F "$1" >/dev/null; then
    # a shell function of this script: its commands bound themselves (network steps use timeout)
    "$@" 2>&1 | tee "$log"
  else
    timeout --kill-after=30 "$limit" "$@" 2>&1 | tee "$log"
  fi
  rc=${PIPESTATUS[0]}
  local secs=$(($(date +%s) - start))
  if [ "$rc" -eq 0 ]; then
    record "$name" PASS "$secs"
    echo "-- $name: PASS (${secs}s)"
  else
    local note="exit $rc"
    [ "$rc" -eq 124 ] && note="timed out after ${limit}s"
    record "$name" FAIL "$secs" "$note"
    echo "-- $name: FAIL ($note, ${secs}s; log $log)"
  fi
  return "$rc"
}

skip_phase() { # name reason...
  local name="$1"
  shift
  section "$name"
  banner "SKIPPED: $name" "$@"
  record "$name" SKIP 0 "$1"
}

fail_phase() { # name reason...
  local name="$1"
  shift
  section "$name"
  banner "FAILED: $name" "$@"
  record "$name" FAIL 0 "$1"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

# ---------------------------------------------------------------------------------------------
phase_system() {
  local missing=() entry cmd pkg
  for entry in "${APT_NEEDS[@]}"; do
    cmd="${entry%%:*}"
    pkg="${entry#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -e "$cmd" ]; then missing+=("$pkg"); fi
  done
  # python3 -m venv needs ensurepip; on Debian's own python3 that is the python3-venv package
  if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=("python3-venv")
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "${SKIP_APT:-}" = "1" ]; then
      echo "missing system packages (SKIP_APT=1, not installing): ${missing[*]}"
      return 1
    fi
    echo "installing missing system packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q || return 1
    as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
      apt-get install -y -q --no-install-recommends "${missing[@]}" || return 1
  else
    echo "system packages: all present (${APT_NEEDS[*]})"
  fi

  # toolchains come with the machine image; check them and say clearly what is missing
  local ok=0
  for tool in cargo rustc node npm python3; do
    if ! command -v "$tool" >/dev/null; then
      echo "MISSING toolchain: $tool"
      ok=1
    fi
  done
  [ "$ok" -eq 0 ] || return 1
  cargo fmt --version >/dev/null 2>&1 || { echo "MISSING: rustfmt (rustup component add rustfmt)"; ok=1; }
  cargo clippy --version >/dev/null 2>&1 || { echo "MISSING: clippy (rustup component add clippy)"; ok=1; }
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$node_major" -lt 20 ]; then
    echo "node >= 20 is required (found $(node --version))"
    ok=1
  fi
  python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' || { echo "python >= 3.9 is required"; ok=1; }
  echo "cargo: $(cargo --version)"
  echo "node:  $(node --version), npm $(npm --version 2>/dev/null)"
  echo "python: $(python3 --version)"
  return "$ok"
}

phase_npm() {
  cd "$INTEROP_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error
}

phase_python_env() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "creating venv $VENV"
    rm -rf "$VENV"
    timeout 300 python3 -m venv "$VENV" || return 1
  fi
  timeout 600 "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    -r "$INTEROP_DIR/python/requirements.txt"
}

# tests/ui drives Debian's Chromium (never a downloaded browser build) through playwright-core.
phase_ui_npm() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "/usr/bin/chromium is missing: the system phase installs Debian's chromium (apt-get install chromium)"
    return 1
  fi
  echo "browser: $(timeout 30 /usr/bin/chromium --headless --no-sandbox --version 2>/dev/null)"
  cd "$UI_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error
}

# The example binaries a test file needs: every startServer("NAME") in it / the python conftest.
needed_examples() {
  grep -ohE 'startServer\("[A-Za-z0-9_]+"' "$@" 2>/dev/null | sed -E 's/.*\("([^"]+)"/\1/' | sort -u
}

# Prints the missing binaries among the given example names. After a failed example build, every
# binary counts as missing: the interop tests never run against stale binaries.
missing_examples() {
  local name
  if [ "$(status_of cargo-build-examples)" != "PASS" ]; then
    for name in "$@"; do echo "$name (cargo build --release --examples did not succeed)"; done
    return
  fi
  for name in "$@"; do
    [ -x "$EXAMPLES_DIR/$name" ] || echo "$name"
  done
}

phase_node_interop() {
  local name="interop-node" files=() runnable=() f
  for f in "$INTEROP_DIR"/*.test.mjs; do [ -e "$f" ] && files+=("$f"); done
  if [ "${#files[@]}" -eq 0 ]; then
    fail_phase "$name" "no tests/interop/*.test.mjs found"
    return
  fi
  if [ "$(status_of npm-ci)" != "PASS" ]; then
    fail_phase "$name" "npm ci failed: the Node interop tests cannot run"
    return
  fi
  local skipped_files=()
  for f in "${files[@]}"; do
    local missing
    # shellcheck disable=SC2046
    missing="$(missing_examples $(needed_examples "$f"))"
    if [ -n "$missing" ]; then
      skipped_files+=("$(basename "$f") (needs: $(echo "$missing" | tr '\n' ' '))")
    else
      runnable+=("$f")
    fi
  done
  if [ "${#skipped_files[@]}" -gt 0 ]; then
    local msg="example binaries missing in $EXAMPLES_DIR for: ${skipped_files[*]}"
    if [ "$CI" = "true" ]; then
      fail_phase "$name-missing-binaries" "$msg" "CI=true: a missing example binary is a failure"
    else
      skip_phase "$name-missing-binaries" "$msg" "these interop tests did NOT run (they fail under CI=true)"
    fi
  fi
  [ "${#runnable[@]}" -gt 0 ] || return
  run_phase "$name" 900 node --test --test-force-exit --test-reporter=spec "${runnable[@]}"
  count_node "$LOG_DIR/$name.log"
}

phase_python_interop() {
  local name="interop-python"
  if [ ! -d "$INTEROP_DIR/python" ]; then
    fail_phase "$name" "tests/interop/python does not exist"
    return
  fi
  if [ "$(status_of python-env)" != "PASS" ]; then
    fail_phase "$name" "the Python venv could not be set up: the Python interop tests cannot run"
    return
  fi
  local missing
  missing="$(missing_examples interop_server)"
  if [ -n "$missing" ]; then
    if [ "$CI" = "true" ]; then
      fail_phase "$name" "example binary missing: $EXAMPLES_DIR/$missing" "CI=true: a missing example binary is a failure"
    else
      skip_phase "$name" "example binary missing: $EXAMPLES_DIR/$missing" "the Python interop tests did NOT run (they fail under CI=true)"
    fi
    return
  fi
  run_phase "$name" 600 "$VENV/bin/python" -m pytest "$INTEROP_DIR/python" -q
  count_pytest "$LOG_DIR/$name.log"
}

phase_ui() {
  local name="ui-chromium" files=() f
  for f in "$UI_DIR"/*.test.mjs; do [ -e "$f" ] && files+=("$f"); done
  if [ "${#files[@]}" -eq 0 ]; then
    fail_phase "$name" "no tests/ui/*.test.mjs found"
    return
  fi
  if [ "$(status_of ui-npm-ci)" != "PASS" ]; then
    fail_phase "$name" "Chromium or npm ci in tests/ui failed: the UI tests cannot run"
    return
  fi
  if [ "$(status_of npm-ci)" != "PASS" ]; then
    fail_phase "$name" "npm ci in tests/interop failed: the pages' Socket.IO client (sio-client-v4) is missing"
    return
  fi
  local missing
  # shellcheck disable=SC2046
  missing="$(missing_examples $(needed_examples "${files[@]}"))"
  if [ -n "$missing" ]; then
    local msg="example binaries missing in $EXAMPLES_DIR: $(echo "$missing" | tr '\n' ' ')"
    if [ "$CI" = "true" ]; then
      fail_phase "$name" "$msg" "CI=true: a missing example binary is a failure"
    else
      skip_phase "$name" "$msg" "the UI tests did NOT run (they fail under CI=true)"
    fi
    return
  fi
  run_phase "$name" 600 node --test --test-force-exit --test-reporter=spec "${files[@]}"
  count_node "$LOG_DIR/$name.log"
}

# ---------------------------------------------------------------------------------------------
# test counts, for the closing summary line
count_cargo() { # log
  local p f i
  p=$(grep -hoE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$1" 2>/dev/null | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  f=$(grep -hoE '; [0-9]+ failed' "$1" 2>/dev/null | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  i=$(grep -hoE '; [0-9]+ ignored' "$1" 2>/dev/null | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + i))
}
count_node() { # spec reporter log (its closing "ℹ pass N" lines)
  [ -f "$1" ] || return 0
  local p f c s
  p=$(grep -aoE '^ℹ pass [0-9]+' "$1" | tail -1 | grep -oE '[0-9]+')
  f=$(grep -aoE '^ℹ fail [0-9]+' "$1" | tail -1 | grep -oE '[0-9]+')
  c=$(grep -aoE '^ℹ cancelled [0-9]+' "$1" | tail -1 | grep -oE '[0-9]+')
  s=$(grep -aoE '^ℹ skipped [0-9]+' "$1" | tail -1 | grep -oE '[0-9]+')
  TOTAL_PASSED=$((TOTAL_PASSED + ${p:-0}))
  TOTAL_FAILED=$((TOTAL_FAILED + ${f:-0} + ${c:-0}))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + ${s:-0}))
}
count_pytest() { # log
  local line
  line=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped)' "$1" 2>/dev/null | tail -1)
  local p f e s
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  e=$(echo "$line" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+')
  s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+')
  TOTAL_PASSED=$((TOTAL_PASSED + ${p:-0}))
  TOTAL_FAILED=$((TOTAL_FAILED + ${f:-0} + ${e:-0}))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + ${s:-0}))
}

# ---------------------------------------------------------------------------------------------
section "Ferrio test run ($(date -u +%Y-%m-%dT%H:%M:%SZ), CI=$CI, $(nproc) cores)"
echo "repo: $ROOT"
echo "logs: $LOG_DIR"

run_phase system 900 phase_system
run_phase npm-ci 600 phase_npm
run_phase ui-npm-ci 900 phase_ui_npm
run_phase python-env 600 phase_python_env

if [ "$(status_of system)" = "PASS" ] || command -v cargo >/dev/null; then
  run_phase cargo-fmt 300 cargo fmt --all -- --check
  run_phase cargo-clippy 1500 cargo clippy --workspace --all-targets -- -D warnings
  run_phase cargo-test 1500 cargo test --workspace --no-fail-fast
  count_cargo "$LOG_DIR/cargo-test.log"
  run_phase cargo-build-examples 1500 cargo build --release --examples
  # Every fuzz target (fuzz/) briefly: 20,000 runs each; installs cargo-fuzz when missing.
  run_phase fuzz-smoke 900 scripts/fuzz.sh smoke
else
  fail_phase cargo "cargo is not installed"
fi

phase_node_interop
phase_python_interop
phase_ui

# ---------------------------------------------------------------------------------------------
section "Summary"
failed=0
for i in "${!PHASES[@]}"; do
  printf '  %-34s %-5s %5ss  %s\n' "${PHASES[$i]}" "${STATUSES[$i]}" "${DURATIONS[$i]}" "${NOTES[$i]}"
  [ "${STATUSES[$i]}" = "FAIL" ] && failed=$((failed + 1))
done
echo "  total time: $(($(date +%s) - RUN_START))s"
if [ "$failed" -gt 0 ]; then
  echo "  RESULT: FAILED ($failed phase(s) failed; logs in $LOG_DIR)"
else
  echo "  RESULT: OK"
fi
echo "tests: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
[ "$failed" -eq 0 ]
