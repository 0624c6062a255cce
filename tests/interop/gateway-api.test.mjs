// The gateway's HTTP API reaching the official socket.io-client v4, and its SIGTERM drain, with
// the real `ferrio serve` binary: `$CARGO_TARGET_DIR/debug/ferrio` (target/ by default), which
// `cargo test --workspace` builds before this phase runs.
//
//   node --test gateway-api.test.mjs
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { FERRIO_MISSING, startFerrio } from "./lib/ferrio.mjs";
import { STEP_MS, waitUntil, withTimeout } from "./lib/util.mjs";

const require = createRequire(import.meta.url);
const { io } = require("sio-client-v4");

const KEY = "0123456789abcdef0123456789abcdef";
const JWT_SECRET = "fedcba9876543210fedcba9876543210";

/** HS256 JWT signed with node:crypto. */
function token(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: 4_000_000_000 })}`;
  const sig = crypto.createHmac("sha256", JWT_SECRET).update(body).digest("base64url");
  return `${body}.${sig}`;
}

describe("gateway HTTP API and drain with socket.io-client v4", { skip: FERRIO_MISSING }, () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startFerrio({
      FERRIO_API_KEY: KEY,
      FERRIO_AUTH_JWT_SECRET: JWT_SECRET,
      FERRIO_AUTH_ALLOW_ANONYMOUS: "true",
      FERRIO_SERVER_SHUTDOWN_TIMEOUT: "10s",
    }, "ferrio-api");
  });

  after(() => {
    for (const c of clients) c.socket.close();
    server?.child.kill("SIGKILL");
  });

  async function api(route, body) {
    const res = await fetch(`${server.url}/api/v1${route}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  /** A connected client recording every event, and its disconnects and reconnection attempts. */
  async function connect(name, sub) {
    const socket = io(server.url, {
      forceNew: true,
      auth: sub ? { token: token(sub) } : undefined,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
      randomizationFactor: 0,
    });
    const client = { name, socket, events: [], disconnects: [], attempts: 0 };
    socket.onAny((event, ...args) => client.events.push([event, ...args]));
    socket.on("disconnect", (reason) => client.disconnects.push(reason));
    socket.io.on("reconnect_attempt", () => client.attempts++);
    await withTimeout(new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }), STEP_MS, `${name} connects`);
    clients.push(client);
    return client;
  }

  /** Every event up to the barrier `done` carrying `step`, which is removed. */
  async function until(client, step) {
    await waitUntil(() => client.events.some((e) => e[0] === "done" && e[1] === step), STEP_MS, `${client.name} gets done ${step}`);
    const at = client.events.findIndex((e) => e[0] === "done" && e[1] === step);
    return client.events.splice(0, at + 1).slice(0, -1);
  }

  test("emits to rooms, users, sockets and everyone reach the clients, binary included", async () => {
    const alice = await connect("alice", "alice");
    const bob = await connect("bob", "bob");
    const guest = await connect("guest");
    const everyone = [alice, bob, guest];
    const done = (step) => api("/emit", { event: "done", data: step });

    assert.deepEqual(
      await api("/sockets/join", { select: { users: ["alice", "bob"] }, rooms: ["lobby"] }),
      { status: 200, body: { matched: 2 } },
    );
    assert.deepEqual(
      await api("/emit", { event: "news", data: { n: 1 }, rooms: ["lobby"], except: ["user:bob"] }),
      { status: 200, body: { recipients: 1 } },
    );
    await done(1);
    assert.deepEqual(await until(alice, 1), [["news", { n: 1 }]]);
    assert.deepEqual(await until(bob, 1), []);
    assert.deepEqual(await until(guest, 1), []);

    assert.deepEqual(
      await api("/emit", { event: "dm", args: ["hi", 2], users: ["bob"], sockets: [guest.socket.id] }),
      { status: 200, body: { recipients: 2 } },
    );
    await done(2);
    assert.deepEqual(await until(alice, 2), []);
    assert.deepEqual(await until(bob, 2), [["dm", "hi", 2]]);
    assert.deepEqual(await until(guest, 2), [["dm", "hi", 2]]);

    const sent = await api("/emit", {
      event: "file",
      args: [{ name: "a.bin", data: { $binary: Buffer.from([0, 1, 2, 255]).toString("base64") } }, { $binary: "aGk=" }],
    });
    assert.deepEqual(sent, { status: 200, body: { recipients: 3 } });
    await done(3);
    for (const client of everyone) {
      const got = await until(client, 3);
      assert.equal(got.length, 1, client.name);
      const [event, meta, raw] = got[0];
      assert.equal(event, "file");
      assert.equal(meta.name, "a.bin");
      assert.ok(Buffer.isBuffer(meta.data), `${client.name}: ${typeof meta.data}`);
      assert.deepEqual([...meta.data], [0, 1, 2, 255]);
      assert.equal(Buffer.from(raw).toString(), "hi");
    }

    const rooms = await api("/rooms");
    assert.deepEqual(rooms.body.rooms, [
      { name: "lobby", sockets: 2 },
      { name: "user:alice", sockets: 1 },
      { name: "user:bob", sockets: 1 },
    ]);
  });

  test("an emit with ack answers with the callbacks' arguments, binary included, and the timeouts", async () => {
    assert.equal(clients.length, 3, "the clients of the previous test");
    const [alice, bob, guest] = clients;
    alice.socket.on("confirm", (data, callback) => callback("yes", data.order));
    bob.socket.on("confirm", (_data, callback) => callback({ file: Buffer.from([0, 1]) }));
    // guest has no handler for it, so it never acknowledges.
    const answer = await api("/emit", { event: "confirm", data: { order: 7 }, ack: { timeout: "2s" } });
    const expected = [
      { socket: alice.socket.id, args: ["yes", 7] },
      { socket: bob.socket.id, args: [{ file: { $binary: "AAE=" } }] },
      { socket: guest.socket.id, error: "no acknowledgement within the timeout", code: "timeout" },
    ].sort((a, b) => (a.socket < b.socket ? -1 : 1));
    assert.deepEqual(answer, { status: 200, body: { recipients: 3, acks: expected } });
    for (const client of clients) client.socket.off("confirm");
    for (const client of clients) client.events.length = 0;
  });

  test("SIGTERM: clients see transport close and try to reconnect; the process exits 0", async () => {
    assert.equal(clients.length, 3, "the clients of the previous test");
    server.child.kill("SIGTERM");
    for (const client of clients) {
      await waitUntil(() => client.disconnects.length > 0 && client.attempts >= 1, STEP_MS, `${client.name} retries`);
      // Not "io server disconnect", after which an official client would stay disconnected.
      assert.deepEqual(client.disconnects, ["transport close"], client.name);
    }
    const exit = await withTimeout(server.exited, 15_000, "ferrio exits");
    assert.deepEqual(exit, { code: 0, signal: null }, server.log());
    assert.match(server.log(), /every connection closed/);
    for (const client of clients) client.socket.close();
  });
});
