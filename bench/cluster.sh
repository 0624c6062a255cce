#!/usr/bin/env bash
# Fan-out over 1, 2 and 3 `ferrio serve` processes sharing a redis-server, and the latency one
# event pays for crossing Redis (crates/redis-adapter/examples/cluster_fanout.rs).
#   bench/cluster.sh [clients] [events]        defaults: 300 clients, 500 events
# Needs redis-server on the PATH. Figures: docs/benchmarks.md, "Several nodes on Redis".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q -p ferrio
cargo build --release -q -p ferrio-redis-adapter --example cluster_fanout
exec target/release/examples/cluster_fanout target/release/ferrio "$@"
