// Small, bounded async helpers shared by the interop tests.
import assert from "node:assert/strict";

export const STEP_MS = 5_000; // CONTRACT.md: 5 s per step
export const SCENARIO_MS = 10_000; // CONTRACT.md: 10 s per scenario

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with `label` when `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `pred` every 20 ms until it is truthy; fails after `ms`. */
export async function waitUntil(pred, ms, label) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${label}`);
    await sleep(20);
  }
}

/**
 * Records every occurrence of the given events of an emitter, so that a test can await "the next
 * unconsumed `x`" without racing the network, and assert that some event never came.
 */
export class Recorder {
  constructor(emitter, events, name = "socket") {
    this.name = name;
    this.queues = new Map();
    this.seen = new Map();
    this.waiters = new Map();
    for (const ev of events) {
      this.queues.set(ev, []);
      this.seen.set(ev, []);
      this.waiters.set(ev, []);
      emitter.on(ev, (...args) => this.#push(ev, args));
    }
  }

  #push(ev, args) {
    this.seen.get(ev).push(args);
    const w = this.waiters.get(ev).shift();
    if (w) w(args);
    else this.queues.get(ev).push(args);
  }

  /** Resolves with the argument list of the next unconsumed `ev`. */
  next(ev, ms = STEP_MS) {
    if (!this.queues.has(ev)) throw new Error(`Recorder does not record ${ev}`);
    const q = this.queues.get(ev);
    if (q.length) return Promise.resolve(q.shift());
    let resolver;
    const p = new Promise((resolve) => {
      resolver = resolve;
      this.waiters.get(ev).push(resolve);
    });
    return withTimeout(p, ms, `${this.name}: event "${ev}"`).catch((e) => {
      const ws = this.waiters.get(ev);
      const i = ws.indexOf(resolver);
      if (i >= 0) ws.splice(i, 1);
      throw e;
    });
  }

  /** How many `ev` were received so far (consumed or not). */
  count(ev) {
    return this.seen.get(ev).length;
  }

  all(ev) {
    return this.seen.get(ev);
  }

  pending(ev) {
    return this.queues.get(ev).length;
  }
}

/**
 * Server → client events may carry one extra trailing string (the CSR offset). Returns the
 * `n` documented leading arguments, asserting that at most one extra string follows.
 */
export function leading(args, n, label = "event") {
  assert.ok(
    args.length === n || (args.length === n + 1 && typeof args[n] === "string"),
    `${label}: expected ${n} argument(s) (+ optional offset string), got ${args.length}: ${safeJson(args)}`,
  );
  return args.slice(0, n);
}

export function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

/** Turns every binary value (Buffer, ArrayBuffer, typed array) into a Buffer, recursively. */
export function normalize(v) {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (v instanceof ArrayBuffer) return Buffer.from(new Uint8Array(v));
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) out[k] = normalize(v[k]);
    return out;
  }
  return v;
}

/** JSON for messages; never throws and keeps huge values short. */
export function safeJson(v, max = 300) {
  let s;
  try {
    s = JSON.stringify(v, (_k, x) =>
      isBinary(x) || (x && x.type === "Buffer" && Array.isArray(x.data)) ? `<binary ${x.byteLength ?? x.length ?? x.data.length}>` : x,
    );
  } catch {
    s = String(v);
  }
  return s && s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Deterministic pseudo-random bytes. */
export function bytes(n, seed = 1) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export const uid = (prefix) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
