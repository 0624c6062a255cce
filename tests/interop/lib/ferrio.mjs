// The gateway binary `ferrio serve` as a child process for the gateway tests:
// `$CARGO_TARGET_DIR/debug/ferrio` (target/ by default), which `cargo test --workspace` builds.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT, freePort } from "./server.mjs";
import { waitUntil } from "./util.mjs";

/** `$CARGO_TARGET_DIR/debug/ferrio`, `target/` of the repo root by default. */
export const FERRIO_BINARY = path.join(
  process.env.CARGO_TARGET_DIR ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : path.join(REPO_ROOT, "target"),
  "debug",
  "ferrio",
);

/** Why the gateway tests cannot run (the skip reason), or false; missing under CI=true throws. */
export const FERRIO_MISSING = fs.existsSync(FERRIO_BINARY)
  ? false
  : `${FERRIO_BINARY} does not exist: build it with \`cargo build -p ferrio\` (cargo test --workspace does)`;
if (FERRIO_MISSING && process.env.CI === "true") throw new Error(FERRIO_MISSING);

/**
 * `ferrio serve --no-env-file` on a free port with a clean environment (`PATH`, the host and port,
 * and `env`), its log in a file of a fresh temporary directory named after `name`; resolves once
 * /health answers, with its URL, port, process, exit (a promise) and log.
 */
export async function startFerrio(env, name = "ferrio") {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const logFile = path.join(dir, "server.log");
  const logFd = fs.openSync(logFile, "w");
  const child = spawn(FERRIO_BINARY, ["serve", "--no-env-file"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      FERRIO_SERVER_HOST: "127.0.0.1",
      FERRIO_SERVER_PORT: String(port),
      ...env,
    },
    stdio: ["ignore", logFd, logFd],
  });
  fs.closeSync(logFd);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  process.once("exit", () => child.kill("SIGKILL"));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    () => fetch(`${url}/health`).then((r) => r.ok, () => false),
    15_000,
    `ferrio serve answers on ${url} (log ${logFile})`,
  );
  return { url, port, child, exited, log: () => fs.readFileSync(logFile, "utf8") };
}
