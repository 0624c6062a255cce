"""The client matrix of CONTRACT.md for python-socketio: rows python/{default, websocket, polling},
columns CON TRN ACK PSH SAK BIN ROM NSP INV AUT SDC DRP (CSR: python-socketio has no connection
state recovery). Each test is one cell: `test_<COLUMN>_<scenario>[python/<row>]`.
"""

import random
import string
import time

import pytest
import socketio

from helpers import ROW_BROKEN, SETTLE_S, STEP_S, emit_ack, leading, wait_until


def uid(prefix):
    return prefix + "-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=10))


def echo_works(sio, namespace="/"):
    payload = {"n": 1, "s": "ok ✓ 😀", "a": [1, None, {"x": True}]}
    assert emit_ack(sio, "echo", payload, "second", namespace=namespace) == [payload, "second"]


def drop_reasons():
    return {socketio.Client.reason.TRANSPORT_ERROR, "transport close"}


ACK_VALUES = [
    0,
    1,
    -1,
    3.5,
    -0.25,
    1e21,
    9007199254740991,
    "",
    "hello",
    "12:34",
    'quote " backslash \\ slash / newline \n tab \t',
    "héllo wörld ✓ 日本語 ∑",
    "astral 😀🎉𝄞 and 👩‍👩‍👧‍👦",
    "a😀" * 700,
    True,
    False,
    None,
    [],
    {},
    [1, "two", [3, [4, [5]]], {"six": 6}],
    {"nested": {"deeper": {"deepest": ["x", {"y": None, "z": "😀"}]}}, "empty": {}, "list": []},
]


def test_CON_connect(clients, row):
    try:
        sio, rec, w = clients.open()
    except (socketio.exceptions.ConnectionError, AssertionError) as e:
        ROW_BROKEN[row] = f"{type(e).__name__}: {e}"
        raise
    welcome = w["/"]
    assert welcome["sid"] == sio.get_sid("/")
    assert welcome["nsp"] == "/"
    assert welcome["recovered"] is False
    assert welcome["auth"] == {}


def test_TRN_transport(clients, row):
    sio, rec, _ = clients.open()
    if row == "default":
        wait_until(lambda: sio.transport() == "websocket", STEP_S, "upgraded to websocket")
        echo_works(sio)
        assert sio.transport() == "websocket"
    else:
        assert sio.transport() == row
        time.sleep(0.5)
        echo_works(sio)
        assert sio.transport() == row


def test_ACK_ack_echo(clients):
    sio, rec, _ = clients.open()
    for v in ACK_VALUES:
        assert emit_ack(sio, "echo", v) == [v], f"echo of {v!r:.60}"
    assert emit_ack(sio, "echo", *ACK_VALUES) == ACK_VALUES
    assert emit_ack(sio, "echo") == []


def test_PSH_server_push(clients):
    sio, rec, w = clients.open(extra_events=["pushed"])
    assert w["/"]["nsp"] == "/"
    for data in [{"hello": "world", "n": [1, 2, 3]}, "unicode ✓ 😀", 42, None, [{}, []]]:
        assert emit_ack(sio, "push", {"event": "pushed", "data": data}) == [{"ok": True}]
        assert rec.pending("pushed") >= 1, "`pushed` arrives before the push ack"
        assert leading(rec.next("pushed"), 1, "pushed") == [data]


def test_SAK_server_ack(clients):
    sio, rec, _ = clients.open()
    questions = []

    def question(*args):
        questions.append(list(args))
        return {"answer": 42}

    sio.on("question", question)
    reply = emit_ack(sio, "request-ack", {"event": "question", "data": {"q": 21}})
    assert questions == [[{"q": 21}]]
    assert reply == [{"reply": [{"answer": 42}]}]


def test_BIN_binary(clients):
    sio, rec, _ = clients.open(extra_events=["echo-event-back"])
    six = bytes([1, 2, 3, 4, 5, 6])
    utf8 = "héllo wörld 😀 ✓".encode("utf-8")
    big = bytes(random.Random(7).getrandbits(8) for _ in range(64 * 1024))
    checks = [
        [six],
        [utf8],
        [big],
        [six, utf8, big],
        [{"nested": {"buf": utf8, "list": [big, "x", six]}}],
        [[utf8, 1, None, [six]]],
        ["text first", six, {"deep": [{"a": big}]}, 7, [utf8]],
    ]
    for args in checks:
        assert emit_ack(sio, "echo", *args) == args
    ev_args = [six, {"k": utf8, "l": [big]}, "tail"]
    assert emit_ack(sio, "echo-event", *ev_args) == [{"ok": True}]
    assert leading(rec.next("echo-event-back"), 3, "echo-event-back") == ev_args
    sio.emit("echo-event", (big, six))
    assert leading(rec.next("echo-event-back"), 2, "echo-event-back") == [big, six]


def test_ROM_rooms(clients):
    room = uid("room")
    a, ra, _ = clients.open(extra_events=["room-msg"])
    b, rb, _ = clients.open(extra_events=["room-msg"])
    c, rc, _ = clients.open(extra_events=["room-msg"])
    assert emit_ack(a, "join", {"room": room}) == [{"room": room, "joined": True}]
    assert emit_ack(b, "join", {"room": room}) == [{"room": room, "joined": True}]
    assert emit_ack(a, "to-room", {"room": room, "event": "room-msg", "data": {"from": "A"}}) == [{"ok": True}]
    assert leading(ra.next("room-msg"), 1) == [{"from": "A"}]
    assert leading(rb.next("room-msg"), 1) == [{"from": "A"}]
    assert emit_ack(b, "leave", {"room": room}) == [{"room": room, "left": True}]
    assert emit_ack(c, "to-room", {"room": room, "event": "room-msg", "data": {"from": "C"}}) == [{"ok": True}]
    assert leading(ra.next("room-msg"), 1) == [{"from": "C"}]
    time.sleep(SETTLE_S)
    assert rb.count("room-msg") == 1, "B got nothing after leaving"
    assert rc.count("room-msg") == 0, "C never got anything"
    assert ra.count("room-msg") == 2


def test_NSP_namespace(clients):
    sio, rec, w = clients.open(namespaces=("/", "/chat"), extra_events=["nsp-msg"])
    assert w["/"]["nsp"] == "/"
    assert w["/chat"]["nsp"] == "/chat"
    assert w["/"]["sid"] == sio.get_sid("/")
    assert w["/chat"]["sid"] == sio.get_sid("/chat")
    assert sio.get_sid("/") != sio.get_sid("/chat")
    payload = {"in": "chat", "u": "😀", "arr": [1, [2]]}
    assert emit_ack(sio, "echo", payload, 2, namespace="/chat") == [payload, 2]
    room = uid("shared-room")
    for ns in ("/", "/chat"):
        assert emit_ack(sio, "join", {"room": room}, namespace=ns) == [{"room": room, "joined": True}]
    assert emit_ack(sio, "to-room", {"room": room, "event": "nsp-msg", "data": "from chat"}, namespace="/chat") == [
        {"ok": True}
    ]
    assert leading(rec.next("nsp-msg", "/chat"), 1) == ["from chat"]
    time.sleep(SETTLE_S)
    assert rec.count("nsp-msg", "/") == 0, "a /chat room broadcast never reaches /"
    assert emit_ack(sio, "to-room", {"room": room, "event": "nsp-msg", "data": "from root"}) == [{"ok": True}]
    assert leading(rec.next("nsp-msg", "/"), 1) == ["from root"]
    time.sleep(SETTLE_S)
    assert rec.count("nsp-msg", "/chat") == 1, "a / room broadcast never reaches /chat"


def test_INV_invalid_namespace(clients):
    ns = "/does-not-exist"
    sio, rec = clients.new(namespaces=(ns,))
    with pytest.raises(socketio.exceptions.ConnectionError):
        clients.connect(sio, namespaces=(ns,))
    (err,) = rec.next("connect_error", ns)
    assert err == {"message": "Invalid namespace"}
    assert rec.count("connect", ns) == 0


def test_AUT_auth(clients):
    ns = "/private"
    bad, rb = clients.new(namespaces=(ns,))
    with pytest.raises(socketio.exceptions.ConnectionError):
        clients.connect(bad, namespaces=(ns,), auth={"token": "bad"})
    (err,) = rb.next("connect_error", ns)
    assert err == {"message": "unauthorized", "data": {"reason": "bad token"}}
    assert rb.count("connect", ns) == 0

    auth = {"token": "secret", "extra": ["x", 1]}
    sio, rec, w = clients.open(namespaces=(ns,), auth=auth)
    assert w[ns]["nsp"] == ns
    assert w[ns]["sid"] == sio.get_sid(ns)
    assert w[ns]["auth"] == auth
    echo_works(sio, ns)


def test_SDC_server_disconnect(clients, row):
    sio, rec, w = clients.open()
    if row == "default":
        wait_until(lambda: sio.transport() == "websocket", STEP_S, "upgraded to websocket")
    sio.emit("server-disconnect-me")
    (reason,) = rec.next("disconnect")
    assert reason == socketio.Client.reason.SERVER_DISCONNECT
    time.sleep(0.7)
    assert rec.count("connect") == 1, "no auto-reconnect within 700 ms"
    assert not sio.connected
    wait_until(lambda: sio.eio.state == "disconnected", STEP_S, "the Engine.IO connection is closed")
    clients.connect(sio)
    rec.next("connect")
    (w2,) = leading(rec.next("welcome"), 1, "welcome after manual reconnect")
    assert w2["sid"] == sio.get_sid("/")
    assert w2["sid"] != w["/"]["sid"], "a manual reconnect gets a new sid"
    assert w2["recovered"] is False
    echo_works(sio)


def test_DRP_transport_drop(clients, row):
    sio, rec, _ = clients.open()
    if row == "default":
        wait_until(lambda: sio.transport() == "websocket", STEP_S, "upgraded to websocket")
    sio.emit("drop-transport")
    (reason,) = rec.next("disconnect")
    assert reason in drop_reasons(), f"disconnect reason {reason!r}"
    rec.next("connect")
    (w2,) = leading(rec.next("welcome"), 1, "welcome after reconnect")
    assert w2["sid"] == sio.get_sid("/")
    assert w2["nsp"] == "/"
    echo_works(sio)
