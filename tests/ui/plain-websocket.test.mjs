// The plain WebSocket endpoint `/ws` of `ferrio serve` from a real browser: Debian's headless
// Chromium, driven by playwright-core, speaking the JSON frames with the browser's own WebSocket,
// next to the official socket.io-client v4 in this process. The server's heartbeat is made fast,
// so the test also shows that the browser's automatic pongs keep an idle connection open.
//
// Needs the `ferrio` binary (`$CARGO_TARGET_DIR/debug/ferrio`, built by `cargo test --workspace`),
// the official client installed in tests/interop (npm ci there) and /usr/bin/chromium.
// Every wait is bounded.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { launchChromium } from "./browser.mjs";

import { REPO_ROOT } from "../interop/lib/server.mjs";
import { FERRIO_MISSING, startFerrio } from "../interop/lib/ferrio.mjs";
import { STEP_MS, sleep, waitUntil, withTimeout } from "../interop/lib/util.mjs";

const require = createRequire(path.join(REPO_ROOT, "tests/interop/package.json"));
const { io } = require("sio-client-v4");

describe("/ws from headless Chromium", { skip: FERRIO_MISSING }, () => {
  let server;
  let browser;
  let page;
  const sockets = [];

  before(async () => {
    server = await startFerrio({
      FERRIO_ROOMS_PUBLIC_JOIN: "^lobby$",
      FERRIO_ROOMS_PUBLIC_PUBLISH: "^lobby$",
      FERRIO_WS_PING_INTERVAL: "200ms",
      FERRIO_WS_PING_TIMEOUT: "300ms",
    }, "ferrio-ui-ws");
    browser = await launchChromium();
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    page = await context.newPage();
    // A page of the server's own origin, as an application page would be.
    await page.goto(`${server.url}/health`);
  }, { timeout: 60_000 });

  after(async () => {
    for (const s of sockets) s.close();
    await browser?.close();
    server?.child.kill("SIGKILL");
  });

  /** The frames the page's WebSocket received so far (every one, in order). */
  const frames = () => page.evaluate(() => window.frames_);

  /** Waits until the page received a frame for which `match` (evaluated here) holds. */
  async function frameWhere(match, label) {
    return waitUntil(async () => (await frames()).find(match), STEP_MS, label);
  }

  test("join, receive, publish and stay open on the browser's pongs", async () => {
    await page.evaluate((url) => {
      window.frames_ = [];
      window.ws_ = new WebSocket(url);
      window.ws_.onmessage = (m) => window.frames_.push(JSON.parse(m.data));
      window.ws_.onclose = (e) => window.frames_.push({ closed: e.code, reason: e.reason });
    }, `ws://127.0.0.1:${server.port}/ws`);
    const hello = await frameWhere((f) => f.type === "connected", "the connected frame");
    assert.equal(hello.namespace, "/");

    await page.evaluate(() => window.ws_.send(JSON.stringify({ type: "join", room: "lobby", id: 1 })));
    await frameWhere((f) => f.type === "joined" && f.id === 1, "joined");

    const socket = io(server.url, { forceNew: true, reconnection: false });
    sockets.push(socket);
    await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), STEP_MS, "socket.io-client connects");
    const got = [];
    socket.on("chat", (data) => got.push(data));
    const ack = (event, arg) =>
      withTimeout(new Promise((resolve) => socket.emit(event, arg, resolve)), STEP_MS, `ack of ${event}`);
    assert.deepEqual(await ack("join", { room: "lobby" }), { ok: true, room: "lobby" });
    assert.deepEqual(await ack("publish", { room: "lobby", event: "news", data: { n: 1 } }), { ok: true, room: "lobby" });
    const news = await frameWhere((f) => f.type === "event", "the news event");
    assert.deepEqual(news, { type: "event", event: "news", data: { n: 1 } });

    await page.evaluate(() =>
      window.ws_.send(JSON.stringify({ type: "publish", room: "lobby", event: "chat", data: "from chromium" })),
    );
    await waitUntil(() => got.length === 1, STEP_MS, "socket.io-client gets the browser's publish");
    assert.deepEqual(got, ["from chromium"]);

    // Idle for several heartbeats: the server pings every 200 ms and closes after 300 ms of
    // silence, so only the browser's automatic pongs keep the connection open.
    await sleep(1_500);
    assert.equal(await page.evaluate(() => window.ws_.readyState), 1, "the connection is still open");
    assert.equal((await frames()).some((f) => "closed" in f), false);
    await page.evaluate(() => window.ws_.send(JSON.stringify({ type: "ping", id: "p" })));
    await frameWhere((f) => f.type === "pong" && f.id === "p", "the pong");

    // A bad frame: an error, and the connection stays.
    await page.evaluate(() => window.ws_.send("{oops"));
    const error = await frameWhere((f) => f.type === "error", "the error frame");
    assert.equal(error.message, "invalid JSON: key must be a string at line 1 column 2");
    assert.equal(await page.evaluate(() => window.ws_.readyState), 1);
  });
});
