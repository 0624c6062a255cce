#!/usr/bin/env bash
# Runs Ferrio's fuzz targets (fuzz/fuzz_targets/) with cargo-fuzz and libFuzzer, on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the sanitizer flags it needs).
#
#   scripts/fuzz.sh                  every target for 60 seconds
#   scripts/fuzz.sh smoke            every target for 20,000 runs (a phase of scripts/test.sh)
#   scripts/fuzz.sh TARGET [SECONDS] one target, 60 seconds by default
#
# cargo-fuzz is installed (cargo install --locked) when missing. A crash stops the run with a
# non-zero status and leaves its input in fuzz/artifacts/TARGET/; replay it with
#   (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET artifacts/TARGET/crash-...)
# The corpus grows in fuzz/corpus/TARGET/ (not committed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGETS=(engineio_packet engineio_payload_v3 engineio_payload_v4 engineio_wsframe socketio_packet)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

cd "$ROOT/fuzz"
run() { # target libfuzzer-options...
  local target="$1"
  shift
  echo "== $target $*"
  # grep hides libFuzzer's progress lines; the status is cargo-fuzz's.
  set +e
  cargo fuzz run "$target" -- "$@" -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY)|panicked|thread '|^error"
  local status=("${PIPESTATUS[@]}")
  set -e
  return "${status[0]}"
}

case "${1:-all}" in
  smoke)
    cargo fuzz build
    for target in "${TARGETS[@]}"; do run "$target" -runs=20000; done
    ;;
  all)
    for target in "${TARGETS[@]}"; do run "$target" -max_total_time=60; done
    ;;
  *)
    run "$1" -max_total_time="${2:-60}"
    ;;
esac
