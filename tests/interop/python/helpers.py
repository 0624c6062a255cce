"""Bounded helpers around the python-socketio client for the interop tests."""

import threading
import time
from collections import defaultdict

import socketio

STEP_S = 5.0  # CONTRACT.md: 5 s per step
SETTLE_S = 0.3  # how long "never arrives" is watched for, after the positive case arrived

TRANSPORTS = {
    "default": ["polling", "websocket"],  # polling, then upgrade
    "websocket": ["websocket"],
    "polling": ["polling"],
}

BASE_EVENTS = ["connect", "disconnect", "welcome", "connect_error"]

# row -> why its CON cell could not connect; the other cells of that row then fail at once
# instead of each waiting for its own time-outs (keeps a run against a broken server short)
ROW_BROKEN = {}


class Recorder:
    """Records events per (namespace, event) so a test can await the next unconsumed one."""

    def __init__(self, sio, events, namespaces=("/",)):
        self._cond = threading.Condition()
        self._queues = defaultdict(list)
        self._seen = defaultdict(list)
        for ns in namespaces:
            for ev in events:
                sio.on(ev, self._handler(ns, ev), namespace=ns)

    def _handler(self, ns, ev):
        def handler(*args):
            with self._cond:
                self._queues[(ns, ev)].append(list(args))
                self._seen[(ns, ev)].append(list(args))
                self._cond.notify_all()

        return handler

    def next(self, ev, ns="/", timeout=STEP_S):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._queues[(ns, ev)]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f'timed out after {timeout} s waiting for "{ev}" on {ns}')
                self._cond.wait(remaining)
            return self._queues[(ns, ev)].pop(0)

    def count(self, ev, ns="/"):
        with self._cond:
            return len(self._seen[(ns, ev)])

    def pending(self, ev, ns="/"):
        with self._cond:
            return len(self._queues[(ns, ev)])


def leading(args, n, label="event"):
    """The n documented leading arguments; at most one extra trailing string (CSR offset)."""
    assert len(args) == n or (len(args) == n + 1 and isinstance(args[n], str)), (
        f"{label}: expected {n} argument(s) (+ optional offset string), got {len(args)}: {args!r:.300}"
    )
    return args[:n]


def emit_ack(sio, event, *args, namespace="/", timeout=STEP_S):
    """Emits with an acknowledgement; returns the ack's argument list."""
    done = threading.Event()
    result = []

    def callback(*ack_args):
        result.extend(ack_args)
        done.set()

    sio.emit(event, tuple(args), namespace=namespace, callback=callback)
    if not done.wait(timeout):
        raise AssertionError(f'timed out after {timeout} s waiting for the ack of "{event}" on {namespace}')
    return result


def wait_until(pred, timeout, label):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {label}")
        time.sleep(0.02)


class ClientFactory:
    """Creates python-socketio clients for one transport row; closes all of them at the end."""

    def __init__(self, url, row):
        self.url = url
        self.row = row
        self.transports = TRANSPORTS[row]
        self._clients = []

    def new(self, namespaces=("/",), extra_events=()):
        """A client (not yet connected) with a Recorder of the base events + `extra_events`."""
        sio = socketio.Client(
            reconnection=True,
            reconnection_delay=0.1,
            reconnection_delay_max=0.5,
            randomization_factor=0,
            request_timeout=STEP_S,
        )
        rec = Recorder(sio, list(BASE_EVENTS) + list(extra_events), namespaces)
        self._clients.append(sio)
        return sio, rec

    def connect(self, sio, namespaces=("/",), auth=None):
        sio.connect(
            self.url,
            transports=self.transports,
            namespaces=list(namespaces),
            auth=auth,
            wait_timeout=STEP_S,
        )

    def open(self, namespaces=("/",), auth=None, extra_events=()):
        """Connects and waits for `connect` and `welcome` on every namespace."""
        sio, rec = self.new(namespaces, extra_events)
        self.connect(sio, namespaces, auth)
        welcomes = {}
        for ns in namespaces:
            rec.next("connect", ns)
            (welcomes[ns],) = leading(rec.next("welcome", ns), 1, f"welcome {ns}")
        return sio, rec, welcomes

    def close_all(self):
        """Disconnects every client, each bounded to 3 s (a stuck tear-down never hangs the run)."""

        def close(sio):
            for fn in (sio.disconnect, getattr(sio, "shutdown", None)):
                if fn is None:
                    continue
                try:
                    fn()
                except Exception:  # noqa: BLE001 - best effort tear-down
                    pass

        threads = [threading.Thread(target=close, args=(sio,), daemon=True) for sio in self._clients]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 3.0
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
