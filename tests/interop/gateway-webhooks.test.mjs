// The gateway's webhooks and plain WebSocket endpoint with the official socket.io-client v4 and
// the `ws` WebSocket client, against the real `ferrio serve` binary:
// `$CARGO_TARGET_DIR/debug/ferrio` (target/ by default), which `cargo test --workspace` builds
// before this phase runs. The backend is a Node HTTP server in this process.
//
//   node --test gateway-webhooks.test.mjs
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { FERRIO_MISSING, startFerrio } from "./lib/ferrio.mjs";
import { STEP_MS, waitUntil, withTimeout } from "./lib/util.mjs";

const require = createRequire(import.meta.url);
const { io } = require("sio-client-v4");
const WebSocket = require("ws");

const HOOK_SECRET = "0123456789abcdef0123456789abcdef";

/** The backend: records every call (with its signature check) and answers by path and event. */
async function startBackend() {
  const calls = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString("utf8"));
      const expected = "sha256=" + crypto.createHmac("sha256", HOOK_SECRET).update(raw).digest("hex");
      const signed = req.headers["x-ferrio-signature"] === expected;
      calls.push({ path: req.url, body, signed });
      const answer = (status, value) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (req.url === "/connect") {
        return body.auth.deny ? answer(403, { message: "you are banned" }) : answer(200, {});
      }
      if (req.url === "/event") {
        if (body.event === "order") return answer(200, [{ id: 7, item: body.args[0].item }, "queued"]);
        if (body.event === "broken") return answer(502, { message: "upstream down" });
        return answer(200, { echo: body.args });
      }
      answer(204, {});
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, calls, close: () => server.close() };
}

/** A plain WebSocket client of /ws whose JSON frames queue up to be awaited one by one. */
async function openPlain(server) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
  const frames = [];
  ws.on("message", (data) => frames.push(JSON.parse(data.toString("utf8"))));
  await withTimeout(new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  }), STEP_MS, "the plain WebSocket opens");
  const next = async (label) => {
    await waitUntil(() => frames.length > 0, STEP_MS, label);
    return frames.shift();
  };
  return { ws, next, send: (frame) => ws.send(JSON.stringify(frame)) };
}

describe("gateway webhooks and /ws with socket.io-client v4 and ws", { skip: FERRIO_MISSING }, () => {
  let backend;
  let server;
  const sockets = [];

  before(async () => {
    backend = await startBackend();
    server = await startFerrio({
      FERRIO_WEBHOOKS_EVENTS_URL: `${backend.url}/event`,
      FERRIO_WEBHOOKS_CONNECT_URL: `${backend.url}/connect`,
      FERRIO_WEBHOOKS_DISCONNECT_URL: `${backend.url}/disconnect`,
      FERRIO_WEBHOOKS_SECRET: HOOK_SECRET,
      FERRIO_ROOMS_PUBLIC_JOIN: "^lobby$",
      FERRIO_ROOMS_PUBLIC_PUBLISH: "^lobby$",
    }, "ferrio-hooks");
  });

  after(() => {
    for (const s of sockets) s.close();
    server?.child.kill("SIGKILL");
    backend?.close();
  });

  function connect(auth) {
    const socket = io(server.url, { forceNew: true, reconnection: false, auth });
    sockets.push(socket);
    return withTimeout(new Promise((resolve) => {
      socket.once("connect", () => resolve({ socket }));
      socket.once("connect_error", (error) => resolve({ socket, error }));
    }), STEP_MS, "the client connects or is refused");
  }

  const withAck = (socket, event, arg) =>
    withTimeout(new Promise((resolve) => socket.emit(event, arg, (...args) => resolve(args))), STEP_MS, `ack of ${event}`);

  test("the backend's answer is the ack, every argument of it, and failures are ack errors", async () => {
    const { socket, error } = await connect({ room: "x" });
    assert.equal(error, undefined);
    assert.deepEqual(await withAck(socket, "order", { item: "tea" }), [{ id: 7, item: "tea" }, "queued"]);
    assert.deepEqual(await withAck(socket, "note", "hi"), [{ echo: ["hi"] }]);
    assert.deepEqual(await withAck(socket, "broken", 1), [
      { error: "webhook answered 502 Bad Gateway: upstream down" },
    ]);
    const order = backend.calls.find((c) => c.path === "/event" && c.body.event === "order");
    assert.equal(order.signed, true, "the call carries a valid X-Ferrio-Signature");
    assert.equal(order.body.socket.id, socket.id);
    assert.deepEqual(order.body.args, [{ item: "tea" }]);
    const hello = backend.calls.find((c) => c.path === "/connect" && c.body.socket.id === socket.id);
    assert.deepEqual(hello.body.auth, { room: "x" });
  });

  test("the connect webhook refuses, the disconnect webhook hears the reason", async () => {
    const refused = await connect({ deny: true });
    assert.equal(refused.error?.message, "you are banned");
    assert.deepEqual(refused.error?.data, { reason: "webhook_refused", status: 403 });

    const { socket } = await connect({});
    const id = socket.id;
    socket.disconnect();
    const bye = await waitUntil(
      () => backend.calls.find((c) => c.path === "/disconnect" && c.body.socket.id === id),
      STEP_MS,
      "the disconnect call",
    );
    assert.equal(bye.body.reason, "client namespace disconnect");
  });

  test("plain WebSocket and Socket.IO clients share rooms", async () => {
    const plain = await openPlain(server);
    const hello = await plain.next("the connected frame");
    assert.equal(hello.type, "connected");
    plain.send({ type: "join", room: "lobby", id: 1 });
    assert.deepEqual(await plain.next("joined"), { type: "joined", room: "lobby", id: 1 });

    const { socket } = await connect({});
    const got = [];
    socket.on("chat", (...args) => got.push(args));
    assert.deepEqual(await withAck(socket, "join", { room: "lobby" }), [{ ok: true, room: "lobby" }]);
    assert.deepEqual(
      await withAck(socket, "publish", { room: "lobby", event: "news", data: { n: 1 } }),
      [{ ok: true, room: "lobby" }],
    );
    assert.deepEqual(await plain.next("the news event"), { type: "event", event: "news", data: { n: 1 } });

    plain.send({ type: "publish", room: "lobby", event: "chat", data: "from plain", id: 2 });
    assert.deepEqual(await plain.next("published"), { type: "published", room: "lobby", id: 2 });
    await waitUntil(() => got.length === 1, STEP_MS, "the chat event reaches socket.io-client");
    assert.deepEqual(got, [["from plain"]]);

    plain.send({ type: "emit", event: "order", data: { item: "cake" }, id: "o1" });
    assert.deepEqual(await plain.next("the ack"), {
      type: "ack",
      id: "o1",
      data: { id: 7, item: "cake" },
      args: [{ id: 7, item: "cake" }, "queued"],
    });
    plain.ws.close();
  });
});
