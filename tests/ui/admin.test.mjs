// The admin page of `ferrio serve` (/admin) in a real browser: Debian's headless Chromium driven
// by playwright-core, with official socket.io-client v4 clients connected in this process. The
// page does everything through the HTTP API with the key typed in; the test checks what it shows
// against what the clients do, and that what clients control is shown as text, never run.
//
// Needs the `ferrio` binary (`$CARGO_TARGET_DIR/debug/ferrio`, built by `cargo test --workspace`),
// the official client installed in tests/interop (npm ci there) and /usr/bin/chromium.
// Every wait is bounded; a failing test leaves a screenshot in target/ui-screenshots/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { launchChromium } from "./browser.mjs";

import { REPO_ROOT } from "../interop/lib/server.mjs";
import { FERRIO_MISSING, startFerrio } from "../interop/lib/ferrio.mjs";
import { STEP_MS, waitUntil, withTimeout } from "../interop/lib/util.mjs";

const SHOTS = path.join(REPO_ROOT, "target", "ui-screenshots");
const require = createRequire(path.join(REPO_ROOT, "tests/interop/package.json"));
const { io } = require("sio-client-v4");

const KEY = "admin-test-key-0123456789abcdef-0123456789";
// A room name a client chooses: markup that would run if the page wrote it as HTML.
const HOSTILE_ROOM = `<img src=x onerror="window.pwned=1">`;

describe("the admin page in headless Chromium", { skip: FERRIO_MISSING }, () => {
  let server;
  let browser;
  let page;
  const sockets = [];
  /** Script errors and Content-Security-Policy violations the page reported. */
  const problems = [];

  /** An official client connected to `/`, resolved once connected. */
  async function connect(label) {
    const socket = io(server.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    sockets.push(socket);
    await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), STEP_MS, `${label} connects`);
    return socket;
  }

  /** Joins `room` with the gateway's built-in `join` event. */
  async function join(socket, room) {
    const answer = await withTimeout(socket.emitWithAck("join", { room }), STEP_MS, `join ${room}`);
    assert.equal(answer.ok, true, JSON.stringify(answer));
  }

  before(async () => {
    server = await startFerrio(
      { FERRIO_API_KEY: KEY, FERRIO_ROOMS_PUBLIC_JOIN: "^.*$" },
      "ferrio-ui-admin",
    );
    browser = await launchChromium();
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The refused calls of the wrong-key test are logged by the browser as failed loads.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        problems.push(`console: ${message.text()}`);
      }
    });
  }, { timeout: 60_000 });

  after(async () => {
    for (const s of sockets) s.close();
    await browser?.close();
    server?.child.kill("SIGKILL");
  });

  /** Runs a test body; on failure, saves a screenshot of the page first. */
  function uiTest(name, body) {
    test(name, async () => {
      try {
        await body();
      } catch (error) {
        fs.mkdirSync(SHOTS, { recursive: true });
        const file = path.join(SHOTS, `admin-${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
        await page.screenshot({ path: file, timeout: STEP_MS }).catch(() => {});
        console.error(`screenshot: ${file}\nserver log:\n${server.log()}`);
        throw error;
      }
    });
  }

  const text = (selector) => page.locator(selector).innerText();

  uiTest("a wrong key is refused with the API's message, the right one opens the dashboard", async () => {
    await page.goto(`${server.url}/admin`);
    await page.locator("#need-key").waitFor({ state: "visible" });
    assert.match(await text("#readiness"), /^ready/);

    await page.fill("#key", "not-the-key");
    await page.click("#key-use");
    await page.locator("#error").waitFor({ state: "visible" });
    assert.equal(await text("#error"), "the API key is wrong (unauthorized)");
    assert.equal(await page.locator("#dashboard").isVisible(), false);

    await page.fill("#key", KEY);
    await page.click("#key-use");
    await page.locator("#dashboard").waitFor({ state: "visible" });
    assert.equal(await page.locator("#error").isVisible(), false);
  });

  uiTest("shows the node's connections, rooms and sockets as the clients change them", async () => {
    const alice = await connect("alice");
    const bob = await connect("bob");
    await join(alice, "lobby");
    await join(bob, HOSTILE_ROOM);

    await page.locator("#conn-total", { hasText: /^2$/ }).waitFor();
    assert.equal(await text("#conn-websocket"), "2");
    assert.equal(await text("#conn-polling"), "0");
    const lobby = page.locator(`#rooms tr[data-room="lobby"]`);
    await lobby.waitFor();
    assert.equal(await lobby.locator("td").nth(1).innerText(), "1");
    await page.locator(`#sockets tr[data-socket="${alice.id}"]`).waitFor();
    await page.locator(`#sockets tr[data-socket="${bob.id}"]`).waitFor();

    // The hostile room name is shown as it is, and nothing of it ran.
    await page.locator("#rooms td", { hasText: HOSTILE_ROOM }).waitFor();
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    assert.equal(await page.locator("#rooms img").count(), 0);

    // Filtering by room lists its members only.
    await lobby.locator("button").click();
    await page.locator("#room-filter").waitFor({ state: "visible" });
    await waitUntil(
      async () => (await page.locator("#sockets tr[data-socket]").count()) === 1,
      STEP_MS,
      "only alice is listed in lobby",
    );
    assert.equal(await page.locator(`#sockets tr[data-socket="${alice.id}"]`).count(), 1);
    await page.click("#room-filter-clear");
    await page.locator(`#sockets tr[data-socket="${bob.id}"]`).waitFor();
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, "admin.png"), fullPage: true });
  });

  uiTest("emits to a room: its member gets the event, the others do not", async () => {
    const [alice, bob] = sockets;
    const got = { alice: [], bob: [] };
    alice.on("notice", (data) => got.alice.push(data));
    bob.on("notice", (data) => got.bob.push(data));

    await page.fill("#emit-event", "notice");
    await page.fill("#emit-room", "lobby");
    await page.fill("#emit-socket", "");
    await page.fill("#emit-data", `{"text": "from the admin page"}`);
    await page.click("#emit-form button[type=submit]");
    await page.locator("#emit-result", { hasText: "sent to 1 socket(s)" }).waitFor();
    await waitUntil(() => got.alice.length === 1, STEP_MS, "alice gets the notice");
    assert.deepEqual(got.alice, [{ text: "from the admin page" }]);

    // Bad JSON never reaches the API, and says why.
    await page.fill("#emit-data", "{not json");
    await page.click("#emit-form button[type=submit]");
    await page.locator("#emit-result", { hasText: "data is not JSON" }).waitFor();
    // A reserved event name gets the API's own refusal.
    await page.fill("#emit-event", "connect");
    await page.fill("#emit-data", "");
    await page.click("#emit-form button[type=submit]");
    await page.locator("#emit-result.bad", { hasText: "invalid_body" }).waitFor();
    assert.deepEqual(got.bob, [], "bob is not in lobby");
    assert.equal(got.alice.length, 1);
  });

  uiTest("makes a socket join a room, then disconnects it; the client sees io server disconnect", async () => {
    const [, bob] = sockets;
    await page.fill("#membership-socket", bob.id);
    await page.fill("#membership-room", "vip");
    await page.click("#membership-join");
    await page.locator("#membership-result", { hasText: "joined: 1 socket(s)" }).waitFor();
    await page.locator(`#rooms tr[data-room="vip"]`).waitFor();

    const reason = new Promise((resolve) => bob.once("disconnect", resolve));
    await page.locator(`#sockets tr[data-socket="${bob.id}"] button.disconnect`).click();
    assert.equal(await withTimeout(reason, STEP_MS, "bob is disconnected"), "io server disconnect");
    await waitUntil(
      async () => (await page.locator(`#sockets tr[data-socket="${bob.id}"]`).count()) === 0,
      STEP_MS,
      "bob leaves the list",
    );
    await page.locator("#conn-total", { hasText: /^1$/ }).waitFor();
    assert.equal(sockets[0].connected, true, "alice is untouched");
  });

  uiTest("a room without history says so", async () => {
    await page.fill("#history-room", "lobby");
    await page.click("#history-form button[type=submit]");
    await page.locator("#history-result.bad").waitFor();
    assert.match(await text("#history-result"), /\(.+\)$/, "the API's message and code");
  });

  test("the page ran without a script error or a policy violation", () => {
    assert.deepEqual(problems, []);
  });

  test("a node whose API is off serves a page that says how to turn it on", async () => {
    const bare = await startFerrio({}, "ferrio-ui-admin-off");
    try {
      const context = await browser.newContext();
      context.setDefaultTimeout(STEP_MS);
      const other = await context.newPage();
      await other.goto(`${bare.url}/admin`);
      await other.fill("#key", "anything");
      await other.click("#key-use");
      await other.locator("#error", { hasText: "The HTTP API of this node is off: set api.key" }).waitFor();
      await context.close();
    } finally {
      bare.child.kill("SIGKILL");
    }
  });
});
