// Starts a prebuilt Ferrio example server as a child process for the interop tests, or targets an
// already running server when SERVER_URL (or SERVER_URL_<EXAMPLE_NAME>) is set.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 3_000;

/** `$CARGO_TARGET_DIR/release/examples/<name>`, `target/` of the repo root by default. */
export function exampleBinary(exampleName) {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, "target");
  return path.join(targetDir, "release", "examples", exampleName);
}

/** `SERVER_URL_CONFORMANCE_SERVER` for `conformance_server`, then the generic `SERVER_URL`. */
export function serverUrlOverride(exampleName) {
  const specific = `SERVER_URL_${exampleName.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
  const url = process.env[specific] || process.env.SERVER_URL;
  return url ? url.replace(/\/+$/, "") : undefined;
}

/** A free TCP port on 127.0.0.1 (bind to port 0, read it, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `target/release/examples/<exampleName>` on a free port of 127.0.0.1 and waits (≤ 15 s)
 * until the port accepts connections. Returns `{ url, port, external, logFile, stop() }`.
 * With SERVER_URL set, nothing is spawned and `url` is that URL.
 */
export async function startServer(exampleName, env = {}) {
  const override = serverUrlOverride(exampleName);
  if (override) {
    return { url: override, port: Number(new URL(override).port), external: true, stop: async () => {} };
  }
  const bin = exampleBinary(exampleName);
  if (!fs.existsSync(bin)) {
    throw new Error(
      `example binary ${bin} does not exist: build it with \`cargo build --release --examples\` ` +
        `(scripts/test.sh does), or set SERVER_URL to target a running server`,
    );
  }
  const port = await freePort();
  const logDir = path.join(REPO_ROOT, "target", "interop-logs");
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${exampleName}-${port}.log`);
  const logFd = fs.openSync(logFile, "w");
  const child = spawn(bin, [], {
    cwd: REPO_ROOT,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info", ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", logFd, logFd],
  });
  fs.closeSync(logFd);
  let exited = null;
  let stopping = false;
  const exitPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      if (!stopping) {
        // say so loudly: every later failure of this file is a consequence
        console.error(
          `\n[interop] ${exampleName} (pid ${child.pid}, port ${port}) exited unexpectedly: ` +
            `code ${code}, signal ${signal}; log ${logFile}\n`,
        );
      }
      resolve(exited);
    });
  });
  const tail = () => {
    try {
      return fs.readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "";
    }
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  let ready = false;
  while (!ready && Date.now() < deadline && !exited) {
    ready = await canConnect(port);
    if (!ready) await sleep(50);
  }
  if (!ready) {
    stopping = true;
    child.kill("SIGKILL");
    const why = exited ? `exited early (${JSON.stringify(exited)})` : `did not accept on port ${port} within ${START_TIMEOUT_MS} ms`;
    throw new Error(`${exampleName} ${why}; log ${logFile}:\n${tail()}`);
  }

  const stop = async () => {
    stopping = true;
    if (exited) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exitPromise;
    clearTimeout(t);
  };
  // never leave the server behind, even if the test process dies abruptly
  process.once("exit", () => {
    if (!exited) child.kill("SIGKILL");
  });
  return { url: `http://127.0.0.1:${port}`, port, external: false, logFile, stop, child };
}
