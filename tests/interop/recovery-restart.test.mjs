// Connection state recovery across a server restart, judged by the official socket.io-client v4:
// `examples/interop_server` keeps its recovery state in a SQLite file (RECOVERY_STORE), is killed
// with SIGKILL and started again on the same port and file. The client that lost its connection
// comes back with `socket.recovered === true`, its id and rooms, and every packet it missed,
// those sent before the crash (once they were in the store) and after the restart, once and in
// order.
//
//   node --test recovery-restart.test.mjs      # spawns target/release/examples/interop_server
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { REPO_ROOT, exampleBinary, startServer } from "./lib/server.mjs";
import { STEP_MS, sleep, waitUntil, withTimeout } from "./lib/util.mjs";

const require = createRequire(import.meta.url);
const { io } = require("sio-client-v4");

// The project's Python (scripts/test.sh sets it up), else the system's; only its sqlite3 is used.
const VENV_PYTHON = path.join(REPO_ROOT, ".venv", "bin", "python3");
const PYTHON = fs.existsSync(VENV_PYTHON) ? VENV_PYTHON : "python3";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferrio-recovery-"));
const store = path.join(dir, "recovery.db");
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A v4 client over WebSocket that never reconnects by itself: the test says when. */
function client(url) {
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  const news = [];
  const welcomes = [];
  socket.on("news", (data) => news.push(data));
  socket.on("welcome", (w) => welcomes.push(w));
  cleanups.push(async () => socket.disconnect());
  return { socket, news, welcomes };
}

const ack = (socket, event, arg) => withTimeout(socket.emitWithAck(event, arg), STEP_MS, `${event} ack`);

/** How many recovery packets in the store hold `text` (the store's own file, read with SQLite). */
function storedPackets(text) {
  const script =
    "import sqlite3, sys\n" +
    "c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n" +
    "print(c.execute('SELECT count(*) FROM packets WHERE instr(data, CAST(? AS BLOB)) > 0', (sys.argv[2],)).fetchone()[0])\n";
  const run = spawnSync(PYTHON, ["-c", script, store, text], { encoding: "utf8", timeout: STEP_MS });
  if (run.status !== 0) throw new Error(`reading the store failed: ${run.stderr}`);
  return Number(run.stdout.trim());
}

function listening(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.once("connect", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });
}

/** The same example binary again, on the same port and store. */
async function restart(port) {
  const log = fs.openSync(path.join(dir, "second.log"), "w");
  const child = spawn(exampleBinary("interop_server"), [], {
    env: { ...process.env, RECOVERY_STORE: store, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  await waitUntil(() => listening(port), 15_000, `the restarted server listens on ${port}`);
  return child;
}

test("a v4 client recovers across a SIGKILL and restart of the server", async () => {
  const first = await startServer("interop_server", { RECOVERY_STORE: store });
  cleanups.push(first.stop);
  const a = client(first.url);
  await waitUntil(() => a.welcomes.length === 1, STEP_MS, "a is welcomed");
  assert.equal(a.welcomes[0].recovered, false);
  const id = a.socket.id;
  assert.deepEqual(await ack(a.socket, "join", { room: "r" }), { room: "r", joined: true });
  const b = client(first.url);
  await waitUntil(() => b.welcomes.length === 1, STEP_MS, "b is welcomed");

  // a sees one packet (so that it holds an offset), then its network fails.
  await ack(b.socket, "to-room", { room: "r", event: "news", data: "live-1" });
  await waitUntil(() => a.news.length === 1, STEP_MS, "a gets live-1");
  const disconnected = new Promise((resolve) => a.socket.once("disconnect", resolve));
  a.socket.emit("drop-transport", { missed: { event: "news", data: "missed-1" } });
  assert.equal(await withTimeout(disconnected, STEP_MS, "a is cut off"), "transport close");
  await ack(b.socket, "to-room", { room: "r", event: "news", data: "missed-2" });

  // The crash, once the last packet a missed is in the store: no shutdown, no flush.
  await waitUntil(() => storedPackets("missed-2") === 1, STEP_MS, "missed-2 is in the store");
  assert.equal(storedPackets("missed-1"), 1, "missed-1 is in the store");
  const exited = new Promise((resolve) => first.child.once("exit", (code, signal) => resolve(signal)));
  // (lib/server.mjs reports this exit as unexpected: it is this test's doing.)
  first.child.kill("SIGKILL");
  assert.equal(await withTimeout(exited, STEP_MS, "the first server dies"), "SIGKILL");

  // The new process, on the same port and store; a new client publishes before a is back.
  await restart(first.port);
  const c = client(first.url);
  await waitUntil(() => c.welcomes.length === 1, STEP_MS, "c is welcomed");
  await ack(c.socket, "to-room", { room: "r", event: "news", data: "after-1" });
  await ack(c.socket, "to-room", { room: "r", event: "news", data: "after-2" });

  a.socket.connect();
  await waitUntil(() => a.welcomes.length === 2, STEP_MS, "a is welcomed again");
  assert.equal(a.welcomes[1].recovered, true, "welcome.recovered");
  assert.equal(a.socket.recovered, true, "socket.recovered");
  assert.equal(a.socket.id, id, "the same id");
  await waitUntil(() => a.news.length >= 5, STEP_MS, "a gets what it missed");
  assert.deepEqual(a.news, ["live-1", "missed-1", "missed-2", "after-1", "after-2"]);

  // Its room is back, and nothing comes twice.
  await ack(c.socket, "to-room", { room: "r", event: "news", data: "live-2" });
  await waitUntil(() => a.news.length >= 6, STEP_MS, "a gets live-2");
  await sleep(100);
  assert.deepEqual(a.news, ["live-1", "missed-1", "missed-2", "after-1", "after-2", "live-2"]);
});
