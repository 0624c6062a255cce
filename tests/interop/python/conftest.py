"""Fixtures for the python-socketio interop tests.

`server_url` starts the prebuilt `target/release/examples/interop_server` on a free port of
127.0.0.1 (PORT / HOST env), waits until it accepts (<= 15 s) and stops it after the session.
SERVER_URL (or SERVER_URL_INTEROP_SERVER) targets an already running server instead.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROW_BROKEN, ClientFactory

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 15.0
ROWS = ["default", "websocket", "polling"]


def example_binary(name):
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = (REPO_ROOT / target) if target else REPO_ROOT / "target"
    return target_dir / "release" / "examples" / name


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def server_url():
    name = "interop_server"
    override = os.environ.get("SERVER_URL_INTEROP_SERVER") or os.environ.get("SERVER_URL")
    if override:
        yield override.rstrip("/")
        return
    binary = example_binary(name)
    if not binary.exists():
        pytest.fail(
            f"example binary {binary} does not exist: build it with "
            "`cargo build --release --examples` (scripts/test.sh does), or set SERVER_URL",
            pytrace=False,
        )
    port = free_port()
    log_dir = REPO_ROOT / "target" / "interop-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-py-{port}.log"
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1")
    env.setdefault("RUST_LOG", "info")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(binary)], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not can_connect(port):
            if proc.poll() is not None:
                pytest.fail(f"{name} exited early ({proc.returncode}); log {log_path}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not accept on port {port} within 15 s; log {log_path}", pytrace=False)
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is not None:
            # say so loudly: every failure after the exit is a consequence
            print(
                f"\n[interop] {name} (pid {proc.pid}, port {port}) exited unexpectedly "
                f"with {proc.returncode}; log {log_path}",
                file=sys.stderr,
            )
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)


@pytest.fixture(params=ROWS, ids=[f"python/{r}" for r in ROWS])
def row(request):
    return request.param


@pytest.fixture
def clients(server_url, row, request):
    if row in ROW_BROKEN and request.node.originalname != "test_CON_connect":
        pytest.fail(f"not attempted: CON of python/{row} could not connect ({ROW_BROKEN[row]})", pytrace=False)
    factory = ClientFactory(server_url, row)
    try:
        yield factory
    finally:
        factory.close_all()
