// The client matrix of /work/shared/interop/CONTRACT.md against `examples/interop_server`:
// rows js-v4 / js-v3 / js-v2 × {default (polling → upgrade), websocket, polling}, columns
// CON TRN ACK PSH SAK BIN ROM NSP INV AUT SDC DRP CSR. Every cell is its own test().
//
//   node --test socketio-matrix.test.mjs                       # spawns target/release/examples/interop_server
//   SERVER_URL=http://127.0.0.1:3001 node --test socketio-matrix.test.mjs   # an already running server
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CLIENT_KINDS,
  ClientSession,
  TRANSPORT_ROWS,
  connectErrorEvent,
  emitAck,
  normalizeConnectError,
  transportName,
} from "./lib/clients.mjs";
import { startServer } from "./lib/server.mjs";
import {
  Recorder,
  SCENARIO_MS,
  STEP_MS,
  bytes,
  isBinary,
  leading,
  normalize,
  safeJson,
  sleep,
  uid,
  waitUntil,
} from "./lib/util.mjs";

const SETTLE_MS = 300; // how long "never arrives" is watched for, after the positive case arrived
const BASE_EVENTS = ["connect", "disconnect", "welcome", "connect_error", "error"];

let server;

/** Opens a socket and waits for `connect` and the `welcome` event. */
async function open(cs, nsp = "/", opts = {}, extraEvents = []) {
  const s = cs.socket(nsp, opts);
  const rec = new Recorder(s, [...BASE_EVENTS, ...extraEvents], `${cs.kind.name} ${nsp}`);
  await rec.next("connect");
  const [welcome] = leading(await rec.next("welcome"), 1, "welcome");
  return { s, rec, welcome };
}

/** In the default row, waits until the polling → WebSocket upgrade is done. */
async function settleTransport(row, s) {
  if (row === "default") {
    await waitUntil(() => transportName(s) === "websocket", STEP_MS, "the upgrade to websocket");
  }
}

async function echoWorks(s, label = "echo") {
  const payload = { n: 1, s: "ok ✓ 😀", a: [1, null, { x: true }] };
  const reply = await emitAck(s, "echo", payload, "second");
  assert.deepEqual(reply, [payload, "second"], `${label}: echo ack`);
}

const ACK_VALUES = [
  0,
  1,
  -1,
  3.5,
  -0.25,
  1e21,
  Number.MAX_SAFE_INTEGER,
  "",
  "hello",
  "12:34", // looks like an EIO3 length prefix
  'quote " backslash \\ slash / newline \n tab \t',
  "héllo wörld ✓ 日本語 ∑",
  "astral 😀🎉𝄞 and 👩‍👩‍👧‍👦",
  "a😀".repeat(700), // EIO3 polling framing counts UTF-16 code units
  true,
  false,
  null,
  [],
  {},
  [1, "two", [3, [4, [5]]], { six: 6 }],
  { nested: { deeper: { deepest: ["x", { y: null, z: "😀" }] } }, empty: {}, list: [] },
];

const SCENARIOS = {
  async CON({ cs }) {
    const { s, welcome } = await open(cs, "/");
    assert.ok(s.id, "the client has a socket id");
    assert.equal(welcome.sid, s.id, "welcome.sid is the client's socket id");
    assert.equal(welcome.nsp, "/");
    assert.equal(welcome.recovered, false);
    assert.deepEqual(welcome.auth, {}, "welcome.auth is {} without an auth payload");
  },

  async TRN({ cs, row }) {
    const { s } = await open(cs, "/");
    if (row === "default") {
      await waitUntil(() => transportName(s) === "websocket", STEP_MS, "the upgrade to websocket");
      await echoWorks(s, "after upgrade");
      assert.equal(transportName(s), "websocket");
    } else {
      assert.equal(transportName(s), row, `connected over ${row}`);
      await sleep(500);
      await echoWorks(s);
      assert.equal(transportName(s), row, `still on ${row}`);
    }
  },

  async ACK({ cs }) {
    const { s } = await open(cs, "/");
    for (const v of ACK_VALUES) {
      assert.deepEqual(await emitAck(s, "echo", v), [v], `echo of ${safeJson(v, 60)}`);
    }
    assert.deepEqual(await emitAck(s, "echo", ...ACK_VALUES), ACK_VALUES, "echo of all values at once");
    assert.deepEqual(await emitAck(s, "echo"), [], "echo without arguments");
  },

  async PSH({ cs }) {
    const { s, rec } = await open(cs, "/", {}, ["pushed"]);
    for (const data of [{ hello: "world", n: [1, 2, 3] }, "unicode ✓ 😀", 42, null, [{}, []]]) {
      const reply = await emitAck(s, "push", { event: "pushed", data });
      assert.deepEqual(reply, [{ ok: true }], "push ack");
      assert.ok(rec.pending("pushed") >= 1, "`pushed` arrives before the push ack");
      const [got] = leading(await rec.next("pushed"), 1, "pushed");
      assert.deepEqual(got, data);
    }
  },

  async SAK({ cs }) {
    const { s } = await open(cs, "/");
    const questions = [];
    s.on("question", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
      questions.push(args);
      if (ack) ack({ answer: 42 });
    });
    const reply = await emitAck(s, "request-ack", { event: "question", data: { q: 21 } });
    assert.equal(questions.length, 1, "exactly one `question` received");
    assert.deepEqual(questions[0], [{ q: 21 }], "question data (no offset on events with an ack)");
    assert.deepEqual(reply, [{ reply: [{ answer: 42 }] }]);
  },

  async BIN({ cs }) {
    const { s, rec } = await open(cs, "/", {}, ["echo-event-back"]);
    const six = Buffer.from([1, 2, 3, 4, 5, 6]);
    const utf8 = Buffer.from("héllo wörld 😀 ✓", "utf8");
    const big = bytes(64 * 1024, 7);
    const checks = [
      [six],
      [utf8],
      [big],
      [six, utf8, big],
      [{ nested: { buf: utf8, list: [big, "x", six] } }],
      [[utf8, 1, null, [six]]],
      ["text first", six, { deep: [{ a: big }] }, 7, [utf8]],
    ];
    for (const args of checks) {
      const reply = await emitAck(s, "echo", ...args);
      assertBinaryEqual(reply, args, `binary echo of ${safeJson(args, 80)}`);
    }
    const evArgs = [six, { k: utf8, l: [big] }, "tail"];
    assert.deepEqual(await emitAck(s, "echo-event", ...evArgs), [{ ok: true }]);
    const back = leading(await rec.next("echo-event-back"), evArgs.length, "echo-event-back");
    assertBinaryEqual(back, evArgs, "echo-event-back");
    // without an ack request too
    s.emit("echo-event", big, six);
    const back2 = leading(await rec.next("echo-event-back"), 2, "echo-event-back");
    assertBinaryEqual(back2, [big, six], "echo-event-back (no ack)");
  },

  async ROM({ cs }) {
    const room = uid("room");
    const A = await open(cs, "/", {}, ["room-msg"]);
    const B = await open(cs, "/", {}, ["room-msg"]);
    const C = await open(cs, "/", {}, ["room-msg"]);
    assert.deepEqual(await emitAck(A.s, "join", { room }), [{ room, joined: true }]);
    assert.deepEqual(await emitAck(B.s, "join", { room }), [{ room, joined: true }]);

    assert.deepEqual(await emitAck(A.s, "to-room", { room, event: "room-msg", data: { from: "A" } }), [{ ok: true }]);
    assert.deepEqual(leading(await A.rec.next("room-msg"), 1, "A room-msg"), [{ from: "A" }], "A (sender, member)");
    assert.deepEqual(leading(await B.rec.next("room-msg"), 1, "B room-msg"), [{ from: "A" }], "B (member)");

    assert.deepEqual(await emitAck(B.s, "leave", { room }), [{ room, left: true }]);
    assert.deepEqual(await emitAck(C.s, "to-room", { room, event: "room-msg", data: { from: "C" } }), [{ ok: true }]);
    assert.deepEqual(leading(await A.rec.next("room-msg"), 1, "A room-msg"), [{ from: "C" }], "A gets C's broadcast");
    await sleep(SETTLE_MS);
    assert.equal(B.rec.count("room-msg"), 1, "B got nothing after leaving");
    assert.equal(C.rec.count("room-msg"), 0, "C (never a member, sender of the 2nd) got nothing");
    assert.equal(A.rec.count("room-msg"), 2);
  },

  async NSP({ cs }) {
    const { manager, socket } = cs.manager();
    const root = socket("/");
    const chat = socket("/chat");
    const rr = new Recorder(root, [...BASE_EVENTS, "nsp-msg"], "/");
    const rc = new Recorder(chat, [...BASE_EVENTS, "nsp-msg"], "/chat");
    await rr.next("connect");
    await rc.next("connect");
    const [wr] = leading(await rr.next("welcome"), 1, "welcome /");
    const [wc] = leading(await rc.next("welcome"), 1, "welcome /chat");
    assert.equal(wr.nsp, "/");
    assert.equal(wc.nsp, "/chat");
    assert.equal(wr.sid, root.id);
    assert.equal(wc.sid, chat.id);
    assert.notEqual(root.id, chat.id);
    assert.equal(root.io, manager, "one Manager");
    assert.equal(chat.io, manager, "one Manager");

    const payload = { in: "chat", u: "😀", arr: [1, [2]] };
    assert.deepEqual(await emitAck(chat, "echo", payload, 2), [payload, 2], "echo in /chat");

    const room = uid("shared-room");
    assert.deepEqual(await emitAck(root, "join", { room }), [{ room, joined: true }]);
    assert.deepEqual(await emitAck(chat, "join", { room }), [{ room, joined: true }]);
    assert.deepEqual(await emitAck(chat, "to-room", { room, event: "nsp-msg", data: "from chat" }), [{ ok: true }]);
    assert.deepEqual(leading(await rc.next("nsp-msg"), 1, "nsp-msg"), ["from chat"]);
    await sleep(SETTLE_MS);
    assert.equal(rr.count("nsp-msg"), 0, "a /chat room broadcast never reaches /");

    assert.deepEqual(await emitAck(root, "to-room", { room, event: "nsp-msg", data: "from root" }), [{ ok: true }]);
    assert.deepEqual(leading(await rr.next("nsp-msg"), 1, "nsp-msg"), ["from root"]);
    await sleep(SETTLE_MS);
    assert.equal(rc.count("nsp-msg"), 1, "a / room broadcast never reaches /chat");
  },

  async INV({ cs, kind }) {
    const s = cs.socket("/does-not-exist");
    const rec = new Recorder(s, BASE_EVENTS, "/does-not-exist");
    const err = normalizeConnectError(kind, await rec.next(connectErrorEvent(kind)));
    assert.equal(err.message, "Invalid namespace");
    await sleep(100);
    assert.equal(rec.count("connect"), 0, "never connected");
    assert.equal(s.connected, false);
  },

  async AUT({ cs, kind }) {
    const bad = cs.socket("/private", { auth: { token: "bad" } });
    const rb = new Recorder(bad, BASE_EVENTS, "/private (bad token)");
    const err = normalizeConnectError(kind, await rb.next(connectErrorEvent(kind)));
    if (kind.major >= 3) {
      assert.equal(err.message, "unauthorized");
    }
    // v2 (EIO3, protocol v4) clients get the error's data only
    assert.deepEqual(err.data, { reason: "bad token" });
    assert.equal(rb.count("connect"), 0);
    assert.equal(bad.connected, false);

    const auth = kind.major >= 3 ? { token: "secret", extra: ["x", 1] } : { token: "secret" };
    const { s, welcome } = await open(cs, "/private", { auth });
    assert.equal(welcome.nsp, "/private");
    assert.equal(welcome.sid, s.id);
    if (kind.major >= 3) assert.deepEqual(welcome.auth, auth, "welcome.auth echoes the CONNECT payload");
    await echoWorks(s, "echo in /private");
  },

  async SDC({ cs, row }) {
    const { s, rec, welcome } = await open(cs, "/");
    await settleTransport(row, s);
    s.emit("server-disconnect-me");
    const [reason] = await rec.next("disconnect");
    assert.equal(reason, "io server disconnect", "disconnect reason (DISCONNECT packet before the connection closes)");
    await sleep(700);
    assert.equal(rec.count("connect"), 1, "no auto-reconnect within 700 ms");
    assert.equal(s.connected, false);

    s.connect();
    await rec.next("connect");
    const [w2] = leading(await rec.next("welcome"), 1, "welcome after manual reconnect");
    assert.equal(w2.sid, s.id);
    assert.notEqual(w2.sid, welcome.sid, "a manual reconnect gets a new sid");
    assert.equal(w2.recovered, false, "a server disconnect is not recoverable");
    if (cs.kind.major >= 4) assert.ok(!s.recovered, "socket.recovered is not true");
    await echoWorks(s);
  },

  async DRP({ cs, row }) {
    const { s, rec } = await open(cs, "/");
    await settleTransport(row, s);
    s.emit("drop-transport");
    const [reason] = await rec.next("disconnect");
    assert.ok(["transport close", "transport error"].includes(reason), `disconnect reason ${reason}`);
    await rec.next("connect");
    const [w2] = leading(await rec.next("welcome"), 1, "welcome after reconnect");
    assert.equal(w2.sid, s.id);
    assert.equal(w2.nsp, "/");
    await echoWorks(s, "echo after reconnect");
  },

  async CSR({ cs, row }) {
    const room = uid("csr-room");
    const { s, rec, welcome } = await open(cs, "/", {}, ["missed", "room-check"]);
    assert.ok(!s.recovered, "socket.recovered is not true on a first connection");
    assert.equal(welcome.recovered, false);
    // socket.io-client 4.8 keeps the CONNECT reply's pid privately (pinned version)
    assert.ok(s._pid, "the CONNECT reply carries a pid (connection state recovery is on)");
    await settleTransport(row, s);
    assert.deepEqual(await emitAck(s, "join", { room }), [{ room, joined: true }]);
    const oldId = s.id;
    const missed = { event: "missed", data: { n: 42, text: "while you were away 😀" } };
    s.emit("drop-transport", { missed });
    const [reason] = await rec.next("disconnect");
    assert.ok(["transport close", "transport error"].includes(reason), `disconnect reason ${reason}`);
    await rec.next("connect");
    assert.equal(s.recovered, true, "socket.recovered");
    assert.equal(s.id, oldId, "same id after recovery");
    assert.deepEqual(leading(await rec.next("missed"), 1, "missed"), [missed.data], "the missed event is replayed");
    const [w2] = leading(await rec.next("welcome"), 1, "welcome after recovery");
    assert.equal(w2.recovered, true, "welcome.recovered");
    assert.equal(w2.sid, oldId);
    assert.equal(welcome.sid, oldId);
    assert.deepEqual(await emitAck(s, "to-room", { room, event: "room-check", data: room }), [{ ok: true }]);
    assert.deepEqual(leading(await rec.next("room-check"), 1, "room-check"), [room], "room membership survived");
  },
};

function assertBinaryEqual(actual, expected, label) {
  const walk = (a, e, where) => {
    if (isBinary(e)) {
      assert.ok(isBinary(a), `${label}: ${where} should be binary, got ${safeJson(a, 80)}`);
      return;
    }
    if (Array.isArray(e)) {
      assert.ok(Array.isArray(a), `${label}: ${where} should be an array`);
      e.forEach((x, i) => walk(a[i], x, `${where}[${i}]`));
    } else if (e !== null && typeof e === "object") {
      for (const k of Object.keys(e)) walk(a && a[k], e[k], `${where}.${k}`);
    }
  };
  walk(actual, expected, "args");
  assert.deepEqual(normalize(actual), normalize(expected), label);
}

const COLUMNS = ["CON", "TRN", "ACK", "PSH", "SAK", "BIN", "ROM", "NSP", "INV", "AUT", "SDC", "DRP", "CSR"];
const DESCRIPTIONS = {
  CON: "connect",
  TRN: "transport",
  ACK: "ack-echo",
  PSH: "server-push",
  SAK: "server-ack",
  BIN: "binary",
  ROM: "rooms",
  NSP: "namespace",
  INV: "invalid-namespace",
  AUT: "auth",
  SDC: "server-disconnect",
  DRP: "transport-drop",
  CSR: "state-recovery",
};

describe("socket.io client matrix (CONTRACT.md) against interop_server", () => {
  before(async () => {
    server = await startServer("interop_server");
  });
  after(async () => {
    await server?.stop();
  });

  for (const kind of Object.values(CLIENT_KINDS)) {
    for (const [row, transports] of Object.entries(TRANSPORT_ROWS)) {
      describe(`${kind.name}/${row}`, () => {
        // When CON cannot even connect, the other cells of the row fail at once instead of each
        // waiting for its own time-outs (keeps a run against a broken server short).
        let rowBroken;
        for (const col of COLUMNS) {
          const opts = { timeout: SCENARIO_MS };
          if (col === "CSR" && kind.major < 4) {
            opts.skip = `socket.io-client ${kind.version} has no connection state recovery (needs ≥ 4.6)`;
          }
          test(`${col} ${DESCRIPTIONS[col]}`, opts, async () => {
            if (rowBroken) assert.fail(`not attempted: CON of ${kind.name}/${row} could not connect (${rowBroken})`);
            const cs = new ClientSession(kind, transports, server.url);
            try {
              await SCENARIOS[col]({ cs, kind, row, transports });
            } catch (e) {
              if (col === "CON" && /timed out .*event "(connect|welcome)"/.test(String(e && e.message))) {
                rowBroken = e.message;
              }
              throw e;
            } finally {
              cs.closeAll();
            }
          });
        }
      });
    }
  }
});
