#!/usr/bin/env bash
# Side-by-side benchmark: Ferrio's examples/bench_server against its peers, the Node socket.io 4.8
# reference (bench/node-server.cjs) and the Rust socketioxide 0.18 (bench/peers/socketioxide, a
# standalone Cargo package), all implementing shared/bench/CONTRACT.md, measured by ferrio-bench.
#
#   bench/compare.sh                 full contract sizes (idle 10000/19000, echo 10 s, fanout 1000x2000 and 10000x200)
#   QUICK=1 bench/compare.sh         quick sizes (idle 2000, echo 5 s, fanout 1000x200, churn 5 s, poll 5 s)
#
# Environment: QUICK=1 (quick sizes), PIN=0 (don't pin; default server on CPU 1, loadgen on CPU 0),
# ONLY="echo-100 fanout-1000" (run only these keys), PEERS="ferrio node socketioxide" (servers
# to run, in this order; the default),
# PORT=21100 (first port, below the ephemeral range the loadgen's own sockets take; every
# run takes the next free one), OUT=bench/results/<utc-time> (results), REPS=1 (runs of every
# measurement, the peers alternating; the table shows each metric's median and, with REPS > 1,
# its range), CARGO_TARGET_DIR (where the binaries are built, the socketioxide peer's too; target/
# by default), BUILD=0 (use the binaries already built there, and the Node modules already
# installed). With BUILD=1 (the default) the loadgen and Ferrio's server are built, and of the
# other peers only those in PEERS: `npm ci` in bench/ for node, `cargo build --release
# --manifest-path bench/peers/socketioxide/Cargo.toml` for socketioxide.
#
# Every measurement starts a fresh server, waits until its port accepts (<= 15 s), runs one
# ferrio-bench scenario with --server-pid, then sends SIGTERM (SIGKILL after 5 s). The JSON line
# of every run goes to $OUT/results.jsonl (with "peer" and "key" added); at the end a table shows
# each metric for every peer that ran (a column each) and, when Ferrio ran, the ratio Ferrio / peer
# for each other peer (columns ferrio/<peer>).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=${QUICK:-0}
PIN=${PIN:-1}
PORT=${PORT:-21100}
PEERS=${PEERS:-"ferrio node socketioxide"}
ONLY=${ONLY:-}
REPS=${REPS:-1}
BUILD=${BUILD:-1}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

if [ "$BUILD" = 1 ]; then
    echo "== building (release) the loadgen and the servers of: $PEERS" >&2
    cargo build --release -q -p ferrio-bench
    cargo build --release -q -p ferrio-examples --example bench_server
    if [[ " $PEERS " == *" node "* ]]; then
        (cd bench && npm ci --no-audit --no-fund --loglevel=error >&2)
    fi
    if [[ " $PEERS " == *" socketioxide "* ]]; then
        # A standalone package (its own workspace), built into the same CARGO_TARGET_DIR.
        CARGO_TARGET_DIR=$TARGET cargo build --release -q --manifest-path bench/peers/socketioxide/Cargo.toml
    fi
fi
LOADGEN=$TARGET/release/ferrio-bench

# The contract: the soft fd limit raised to the hard limit (20000 here) for server and loadgen.
ulimit -n "$(ulimit -Hn)"

server_command() {
    case $1 in
        ferrio) echo "$TARGET/release/examples/bench_server" ;;
        node) echo "node $ROOT/bench/node-server.cjs" ;;
        socketioxide) echo "$TARGET/release/socketioxide-bench-peer" ;;
        *) echo "unknown peer $1" >&2; exit 2 ;;
    esac
}

if [ "$PIN" = 1 ]; then
    SRV_PIN=(taskset -c 1)
    LG_PIN=(taskset -c 0)
else
    SRV_PIN=()
    LG_PIN=()
fi

if [ "$QUICK" = 1 ]; then
    SCENARIOS=(
        "check|check"
        "idle-2000|idle --conns 2000 --hold 5 --concurrency 100"
        "echo-100|echo --conns 100 --duration 5 --warmup 1"
        "echo-rate-5000|echo --conns 100 --duration 5 --warmup 1 --rate 5000"
        "echo-pipe-16|echo --conns 100 --duration 5 --warmup 1 --inflight 16"
        "fanout-1000|fanout --conns 1000 --msgs 200 --duration 10"
        "churn-50|churn --duration 5 --concurrency 50"
        "poll-echo-10|poll --conns 10 --duration 5 --warmup 1"
    )
else
    SCENARIOS=(
        "check|check"
        "idle-10000|idle --conns 10000 --hold 5 --concurrency 100"
        "idle-19000|idle --conns 19000 --hold 5 --concurrency 100"
        "echo-100|echo --conns 100 --duration 10 --warmup 2"
        "echo-rate-5000|echo --conns 100 --duration 10 --warmup 2 --rate 5000"
        "echo-pipe-16|echo --conns 100 --duration 10 --warmup 2 --inflight 16"
        "fanout-1000|fanout --conns 1000 --msgs 2000 --duration 10"
        "fanout-10000|fanout --conns 10000 --msgs 200 --duration 10"
        "churn-50|churn --duration 10 --concurrency 50"
        "poll-echo-10|poll --conns 10 --duration 10 --warmup 2"
    )
fi

port_open() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_ready() { # port pid
    local deadline=$((SECONDS + 15))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$2" 2>/dev/null || return 1
        # Ready once the port accepts and the server is still alive (not refused by a bind error).
        if port_open "$1"; then sleep 0.2; kill -0 "$2" 2>/dev/null && return 0; return 1; fi
        sleep 0.05
    done
    return 1
}

stop_server() { # pid
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
for entry in "${SCENARIOS[@]}"; do
    key=${entry%%|*}
    args=${entry#*|}
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $key "* ]]; then continue; fi
    for rep in $(seq "$REPS"); do
    for peer in $PEERS; do
        log=$OUT/$key-$peer.server.log
        pid=
        for _attempt in 1 2 3; do
            PORT=$((PORT + 1))
            # Another process may listen there already: take the next port nobody answers on.
            while port_open "$PORT"; do PORT=$((PORT + 1)); done
            # shellcheck disable=SC2046 # the command is split into words on purpose
            PORT=$PORT HOST=127.0.0.1 "${SRV_PIN[@]}" $(server_command "$peer") >"$log" 2>&1 &
            pid=$!
            wait_ready "$PORT" "$pid" && break
            echo "!! $peer did not listen on 127.0.0.1:$PORT within 15 s (see $log)" >&2
            stop_server "$pid"
            pid=
        done
        [ -n "$pid" ] || continue
        echo "== $key on $peer, run $rep/$REPS (pid $pid, port $PORT): ferrio-bench $args" >&2
        # shellcheck disable=SC2086
        line=$("${LG_PIN[@]}" "$LOADGEN" --port "$PORT" --server-pid "$pid" --label "$peer" --quiet $args \
            2>"$OUT/$key-$peer.loadgen.log") || echo "!! loadgen failed on $key/$peer (see $OUT/$key-$peer.loadgen.log)" >&2
        stop_server "$pid"
        if [ -n "$line" ]; then
            python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["peer"]=sys.argv[2]; r["key"]=sys.argv[3]; r["rep"]=int(sys.argv[4]); print(json.dumps(r))' \
                "$line" "$peer" "$key" "$rep" >>"$RESULTS"
        fi
        sleep 1
    done
    done
done

python3 - "$RESULTS" "$PEERS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = {}
for r in rows:
    runs.setdefault((r["key"], r["peer"]), []).append(r)
keys = list(dict.fromkeys(r["key"] for r in rows))
# Every peer that ran, in the order of PEERS; a ratio ferrio/<peer> for each other one.
ran = set(r["peer"] for r in rows)
peers = [p for p in dict.fromkeys(sys.argv[2].split()) if p in ran]
peers += [p for p in dict.fromkeys(r["peer"] for r in rows) if p not in peers]
others = [p for p in peers if p != "ferrio"] if "ferrio" in peers else []
reps = max((len(v) for v in runs.values()), default=1)
# (metric, better): "+" higher is better, "-" lower is better.
metrics = {
    "check": [("passed", "+"), ("failed", "-")],
    "idle": [("kib_per_conn", "-"), ("conn_per_s", "+"), ("hs_p99_us", "-"), ("srv_cpu_ramp", "-"), ("lg_cpu_ramp", "")],
    "echo": [("acks_per_s", "+"), ("rtt_p50_us", "-"), ("rtt_p99_us", "-"), ("rtt_p999_us", "-"), ("late_sends", "-"), ("srv_cpu", ""), ("lg_cpu", "")],
    "fanout": [("deliveries_per_s", "+"), ("lat_p50_us", "-"), ("lat_p99_us", "-"), ("lost", "-"), ("srv_cpu", ""), ("lg_cpu", "")],
    "churn": [("cycles_per_s", "+"), ("hs_p99_us", "-"), ("srv_cpu", ""), ("lg_cpu", "")],
    "poll": [("acks_per_s", "+"), ("rtt_p50_us", "-"), ("rtt_p99_us", "-"), ("rtt_p999_us", "-"), ("srv_cpu", ""), ("lg_cpu", "")],
}

def values(key, peer, metric):
    vs = [r.get(metric) for r in runs.get((key, peer), [])]
    return [v for v in vs if isinstance(v, (int, float))]

def median(vs):
    return statistics.median(vs) if vs else None

def show(vs):
    if not vs:
        return "-"
    m = median(vs)
    text = f"{m:g}" if isinstance(m, float) else str(m)
    if len(vs) > 1 and min(vs) != max(vs):
        text += f" [{min(vs):g}-{max(vs):g}]"
    return text

title = "median [min-max] of " + str(reps) + " runs" if reps > 1 else "one run"
ratio_width = [max(10, len("ferrio/" + p) + 2) for p in others]
print(f"({title})")
header = f"{'key':<16}{'metric':<18}" + "".join(f"{p:>26}" for p in peers)
header += "".join(f"{'ferrio/' + p:>{w}}" for p, w in zip(others, ratio_width))
print(header)
for key in keys:
    any_run = next(runs[(key, p)][0] for p in peers if (key, p) in runs)
    for metric, better in metrics[any_run["scenario"]]:
        vs = {p: values(key, p, metric) for p in peers}
        fm = median(vs.get("ferrio", []))
        line = f"{key:<16}{metric:<18}" + "".join(f"{show(vs[p]):>26}" for p in peers)
        for p, w in zip(others, ratio_width):
            pm = median(vs[p])
            line += f"{f'{fm / pm:.2f}' if fm is not None and pm else '-':>{w}}"
        hint = {"+": " (higher better)", "-": " (lower better)"}.get(better, "")
        print(line + hint)
    for peer in peers:
        for r in runs.get((key, peer), []):
            if r.get("first_error"):
                print(f"{'':<16}{peer} run {r.get('rep', 1)} first_error: {r['first_error']} ({r.get('errors')} errors)")
            if isinstance(r.get("lg_cpu"), (int, float)) and r["lg_cpu"] >= 0.9:
                print(f"{'':<16}{peer} run {r.get('rep', 1)}: loadgen at {r['lg_cpu']} core: a loadgen ceiling, not a server one")
PY
echo "results: $RESULTS" >&2
