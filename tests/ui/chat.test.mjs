// The chat example in a real browser: Debian's headless Chromium, driven by playwright-core, with
// several users, each in a browser context of their own (as separate browsers would be).
//
// Needs `target/release/examples/chat` (cargo build --release --examples), the official client
// installed in tests/interop (npm ci there) and /usr/bin/chromium (apt-get install chromium).
// Every wait is bounded; a failing test leaves screenshots in target/ui-screenshots/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { launchChromium } from "./browser.mjs";

import { REPO_ROOT, startServer } from "../interop/lib/server.mjs";

const CLIENT_JS = path.join(REPO_ROOT, "tests/interop/node_modules/sio-client-v4/dist/socket.io.min.js");
const SHOTS = path.join(REPO_ROOT, "target", "ui-screenshots");
const STEP_MS = 5_000; // one UI step: a click and what it should show
const TEST_MS = 30_000;
const QUIET_MS = 500; // how long "nothing arrives" is watched for

let server;
let browser;
const users = new Map(); // name -> { context, page }
const pageErrors = [];
// Pages whose login the server refused, and the long-polling requests answered 400 on them: a
// refused page closes its connection at once, and engine.io-client can have a poll or a post
// of that session still on its way, which then meets a closed session (Node's server answers
// it 400 too). Chromium logs that as "Failed to load resource"; only that is forgiven, and only
// on those pages.
const refusedPages = new Set();
const closedPolls = new Map();
const outsideRequests = [];

before(async () => {
  assert.ok(fs.existsSync(CLIENT_JS), `${CLIENT_JS} is missing: run npm ci in tests/interop`);
  server = await startServer("chat", { FERRIO_CLIENT_JS: CLIENT_JS });
  // the page must get the client from the server, not from the CDN fallback
  const client = await fetch(`${server.url}/socket.io.min.js`, { signal: AbortSignal.timeout(STEP_MS) });
  assert.equal(client.status, 200, "the chat example serves the Socket.IO client");
  browser = await launchChromium();
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new browser context on the chat page, its nickname field filled and submitted. */
async function openPage(name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 680 } });
  context.setDefaultTimeout(STEP_MS);
  context.setDefaultNavigationTimeout(STEP_MS);
  // nothing may leave 127.0.0.1 (a CDN request would mean the local client was not used)
  await context.route(
    (url) => url.origin !== server.url,
    (route) => {
      outsideRequests.push(route.request().url());
      return route.abort();
    },
  );
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
  page.on("response", (response) => {
    const url = response.url();
    if (response.status() === 400 && url.includes("/socket.io/") && url.includes("transport=polling")) {
      closedPolls.set(name, (closedPolls.get(name) ?? 0) + 1);
    }
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(`${name} console: ${msg.text()}`);
  });
  await page.goto(`${server.url}/`);
  await page.fill("#name", name);
  await page.click("#login-button");
  users.set(name || "(empty)", { context, page });
  return page;
}

/** Logs `name` in and waits until the page shows the lobby. */
async function login(name) {
  const page = await openPage(name);
  await waitForText(page, "#current-room", "#lobby");
  return page;
}

async function logout(name) {
  const user = users.get(name);
  users.delete(name);
  await user.context.close();
}

/** Waits until `selector`'s text is `expected`; fails with what it shows instead. */
async function waitForText(page, selector, expected) {
  try {
    await page.waitForFunction(
      ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
      [selector, expected],
      { timeout: STEP_MS },
    );
  } catch (error) {
    const shown = await page.locator(selector).textContent({ timeout: 500 }).catch(() => "(absent)");
    throw new Error(`${selector} shows ${JSON.stringify(shown)}, expected ${JSON.stringify(expected)}: ${error.message}`);
  }
}

const textsOf = (page, selector) => page.locator(selector).allTextContents();

/** Waits until the member list is exactly `names`. */
async function waitForMembers(page, names) {
  try {
    await page.waitForFunction(
      (want) => JSON.stringify([...document.querySelectorAll("#members li")].map((li) => li.textContent)) === want,
      JSON.stringify(names),
      { timeout: STEP_MS },
    );
  } catch (error) {
    throw new Error(`members are ${JSON.stringify(await textsOf(page, "#members li"))}, expected ${JSON.stringify(names)}: ${error.message}`);
  }
}

/** The message in `page` whose text is exactly `text` (waits for it). */
async function waitForMessage(page, text) {
  const message = page.locator("#messages li.message").filter({
    has: page.locator(".text", { hasText: new RegExp(`^${escapeRegExp(text)}$`) }),
  });
  await message.waitFor();
  return message;
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function joinRoom(page, room) {
  await page.fill("#room-name", room);
  await page.press("#room-name", "Enter");
  await waitForText(page, "#current-room", `#${room}`);
}

/** Runs a test body; on failure, saves a screenshot of every open page first. */
function uiTest(name, body) {
  test(name, { timeout: TEST_MS }, async () => {
    try {
      await body();
    } catch (error) {
      fs.mkdirSync(SHOTS, { recursive: true });
      const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      for (const [user, { page }] of users) {
        const file = path.join(SHOTS, `failure-${slug}-${user.replace(/[^a-z0-9]+/gi, "_")}.png`);
        await page.screenshot({ path: file, timeout: STEP_MS }).catch(() => {});
        console.error(`screenshot of ${user}'s page: ${file}`);
      }
      throw error;
    }
  });
}

describe("chat example in Chromium", () => {
  uiTest("an empty nickname is refused by the server and the page says why", async () => {
    refusedPages.add("");
    const page = await openPage("");
    try {
      await waitForText(page, "#login-error", "Refused: a nickname is required");
      assert.equal(await page.locator("#app").isVisible(), false);
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, "chat-login-refused.png") });
    } finally {
      await logout("(empty)"); // even when let in, so that the next tests see only their users
    }
  });

  uiTest("a nickname over 32 characters is refused", async () => {
    const name = "n".repeat(33);
    refusedPages.add(name);
    const page = await openPage(name);
    try {
      await waitForText(page, "#login-error", "Refused: nickname too long: 33 characters, the limit is 32");
    } finally {
      await logout(name);
    }
  });

  uiTest("a message typed in one page appears in the other, with join notice and members", async () => {
    const alice = await login("alice");
    await waitForMembers(alice, ["alice"]);
    const bob = await login("bob");
    await waitForMembers(bob, ["alice", "bob"]);
    await waitForMembers(alice, ["alice", "bob"]);
    await alice.locator("#messages li.notice", { hasText: "bob joined #lobby" }).waitFor();

    // the browser's client upgraded to WebSocket through the axum router
    await alice.waitForFunction(() => socket?.io.engine.transport.name === "websocket", null, { timeout: STEP_MS });

    await send(alice, "hello from alice");
    const atBob = await waitForMessage(bob, "hello from alice");
    assert.equal(await atBob.locator(".name").textContent(), "alice");
    const atAlice = await waitForMessage(alice, "hello from alice");
    assert.match(await atAlice.getAttribute("class"), /\bmine\b/);
    assert.equal(await alice.inputValue("#text"), "", "the composer is cleared once the server acknowledged");
  });

  uiTest("typing shows an indicator to the others", async () => {
    const { page: alice } = users.get("alice");
    const { page: bob } = users.get("bob");
    await bob.locator("#text").pressSequentially("hi", { delay: 20 });
    await waitForText(alice, "#typing", "bob is typing…");
    await send(bob, "hi alice");
    await waitForMessage(alice, "hi alice");
    await waitForText(alice, "#typing", "");
  });

  uiTest("user text is shown as text, never run as HTML", async () => {
    const { page: alice } = users.get("alice");
    const { page: bob } = users.get("bob");
    const nasty = `<img src=x onerror="window.__owned=1"><b>bold?</b>`;
    await send(alice, nasty);
    await waitForMessage(bob, nasty);
    assert.equal(await bob.locator("#messages img, #messages .text b").count(), 0);
    assert.equal(await bob.evaluate(() => window.__owned), undefined);
  });

  uiTest("switching rooms isolates messages and member lists", async () => {
    const { page: alice } = users.get("alice");
    const { page: bob } = users.get("bob");
    await joinRoom(bob, "rust");
    await waitForMembers(bob, ["bob"]);
    await waitForMembers(alice, ["alice"]);
    await alice.locator("#messages li.notice", { hasText: "bob left #lobby" }).waitFor();
    assert.deepEqual(await textsOf(bob, "#messages li.message"), [], "a new room has no history");

    await send(alice, "lobby only");
    await send(bob, "rust only");
    await waitForMessage(alice, "lobby only");
    await waitForMessage(bob, "rust only");
    await new Promise((r) => setTimeout(r, QUIET_MS));
    assert.equal(await bob.locator("#messages .text", { hasText: "lobby only" }).count(), 0);
    assert.equal(await alice.locator("#messages .text", { hasText: "rust only" }).count(), 0);

    // back to the lobby from the room list: its history, and not the other room's
    await bob.click("#rooms button:text-is('#lobby')");
    await waitForText(bob, "#current-room", "#lobby");
    await waitForMessage(bob, "lobby only");
    assert.equal(await bob.locator("#messages .text", { hasText: "rust only" }).count(), 0);
    await waitForMembers(alice, ["alice", "bob"]);
  });

  uiTest("a late joiner is shown the room's history", async () => {
    const carol = await login("carol");
    const texts = await textsOf(carol, "#messages li.message .text");
    assert.deepEqual(texts, [
      "hello from alice",
      "hi alice",
      `<img src=x onerror="window.__owned=1"><b>bold?</b>`,
      "lobby only",
    ]);
    await carol.locator("#messages li.history-mark").waitFor();
    await waitForMembers(carol, ["alice", "bob", "carol"]);
  });

  uiTest("an over-long message is refused with the server's error", async () => {
    const { page: alice } = users.get("alice");
    const { page: bob } = users.get("bob");
    const before = (await textsOf(bob, "#messages li.message")).length;
    await send(alice, "x".repeat(2001));
    await waitForText(alice, "#send-error", "Not sent: message too long: 2001 characters, the limit is 2000");
    assert.match(await alice.getAttribute("#counter", "class"), /\bover\b/);
    assert.equal((await alice.inputValue("#text")).length, 2001, "the text stays for editing");
    await new Promise((r) => setTimeout(r, QUIET_MS));
    assert.equal((await textsOf(bob, "#messages li.message")).length, before, "nothing was delivered");
    await alice.fill("#text", "");
    await waitForText(alice, "#send-error", "");
  });

  uiTest("leaving is announced and the member list follows", async () => {
    const { page: alice } = users.get("alice");
    await logout("carol");
    await alice.locator("#messages li.notice", { hasText: "carol left #lobby" }).waitFor();
    await waitForMembers(alice, ["alice", "bob"]);
  });

  uiTest("screenshot: target/ui-screenshots/chat.png", async () => {
    const { page: alice } = users.get("alice");
    const { page: bob } = users.get("bob");
    await send(bob, "Looks good! Rooms, history and typing all work here.");
    await waitForMessage(alice, "Looks good! Rooms, history and typing all work here.");
    await bob.locator("#text").pressSequentially("one more", { delay: 10 });
    await waitForText(alice, "#typing", "bob is typing…");
    fs.mkdirSync(SHOTS, { recursive: true });
    await alice.screenshot({ path: path.join(SHOTS, "chat.png") });
  });

  uiTest("no page errors and no request left 127.0.0.1", async () => {
    const closedPoll = (error) =>
      [...refusedPages].some(
        (name) =>
          closedPolls.get(name) > 0 &&
          error === `${name} console: Failed to load resource: the server responded with a status of 400 (Bad Request)`,
      );
    assert.deepEqual(pageErrors.filter((error) => !closedPoll(error)), []);
    assert.deepEqual(outsideRequests, []);
  });
});

describe("chat example without a local client", () => {
  let bare;
  before(async () => {
    bare = await startServer("chat", { FERRIO_CLIENT_JS: path.join(SHOTS, "no-such-client.js") });
  }, { timeout: 30_000 });
  after(async () => {
    await bare?.stop();
  });

  uiTest("the page falls back to the client from the CDN", async () => {
    const local = await fetch(`${bare.url}/socket.io.min.js`, { signal: AbortSignal.timeout(STEP_MS) });
    assert.equal(local.status, 404);
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    try {
      // the CDN, played by the test: this machine has no internet
      const cdn = [];
      await context.route(
        (url) => url.origin !== bare.url,
        (route) => {
          const url = route.request().url();
          cdn.push(url);
          if (url !== "https://cdn.jsdelivr.net/npm/socket.io-client@4.8.4/dist/socket.io.min.js") {
            return route.abort();
          }
          return route.fulfill({ contentType: "text/javascript", body: fs.readFileSync(CLIENT_JS, "utf8") });
        },
      );
      const page = await context.newPage();
      await page.goto(`${bare.url}/`);
      await page.fill("#name", "dora");
      await page.click("#login-button");
      await waitForText(page, "#current-room", "#lobby");
      assert.deepEqual(cdn, ["https://cdn.jsdelivr.net/npm/socket.io-client@4.8.4/dist/socket.io.min.js"]);
    } finally {
      await context.close();
    }
  });
});
