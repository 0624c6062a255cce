// Raw HTTP requests for Engine.IO checks (node:http: no connection reuse, tolerant of a server that
// answers before it has read the whole request body, as a 413 may).
import http from "node:http";
import { STEP_MS } from "./util.mjs";

/** Resolves `{ status, headers, text }`; rejects only when no response came at all. */
export function request(method, url, body, headers = {}, timeoutMs = STEP_MS) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (fn, v) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        fn(v);
      }
    };
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        done(resolve, { status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", (e) => done(reject, e));
    });
    const timer = setTimeout(() => {
      req.destroy();
      done(reject, new Error(`timed out after ${timeoutMs} ms: ${method} ${url}`));
    }, timeoutMs);
    // an error after the response started (e.g. EPIPE while still sending a too-large body) is
    // not a failure: the answer is the response
    req.on("error", (e) => setTimeout(() => done(reject, e), 200));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export const get = (url, timeoutMs) => request("GET", url, undefined, {}, timeoutMs);
export const post = (url, body, timeoutMs) =>
  request("POST", url, body, { "content-type": "text/plain;charset=UTF-8" }, timeoutMs);

/** Opens an EIO=4 polling session; returns the parsed handshake. */
export async function handshake4(base) {
  const r = await get(`${base}?EIO=4&transport=polling`);
  if (r.status !== 200 || r.text[0] !== "0") {
    throw new Error(`EIO4 handshake failed: ${r.status} ${r.text.slice(0, 200)}`);
  }
  return JSON.parse(r.text.slice(1));
}
