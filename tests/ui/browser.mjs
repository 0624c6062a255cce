// Debian's headless Chromium (never a downloaded build), launched the same way by every UI test.
import assert from "node:assert/strict";
import fs from "node:fs";
import { chromium } from "playwright-core";

/** The browser binary: `$CHROMIUM`, or Debian's package. */
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Launches headless Chromium with nothing running in the background; fails clearly if missing. */
export async function launchChromium() {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
}
