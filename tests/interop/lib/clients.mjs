// One uniform face over the three socket.io-client majors used by the matrix, so that every
// scenario is written once. Differences that matter are explicit (see `kind.major`).
import { createRequire } from "node:module";
import { STEP_MS, withTimeout } from "./util.mjs";

const require = createRequire(import.meta.url);
const v4 = require("sio-client-v4");
const v3 = require("sio-client-v3");
const v2 = require("sio-client-v2");

export const CLIENT_KINDS = {
  "js-v4": { name: "js-v4", major: 4, lookup: v4.io, Manager: v4.Manager, version: require("sio-client-v4/package.json").version },
  "js-v3": { name: "js-v3", major: 3, lookup: v3.io || v3, Manager: v3.Manager, version: require("sio-client-v3/package.json").version },
  "js-v2": { name: "js-v2", major: 2, lookup: v2, Manager: v2.Manager, version: require("sio-client-v2/package.json").version },
};

/** Transport rows: default = polling, then upgrade to WebSocket. */
export const TRANSPORT_ROWS = {
  default: undefined,
  websocket: ["websocket"],
  polling: ["polling"],
};

/** CONTRACT.md: forceNew, reconnectionDelay 100 ms, reconnectionDelayMax 500 ms, no randomization. */
function baseOptions(transports) {
  const opts = {
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
    timeout: STEP_MS,
  };
  if (transports) opts.transports = transports;
  return opts;
}

/**
 * A session of one test: creates sockets / managers for one client kind and transport row, and
 * closes every one of them in `closeAll()` (called from the test's `finally`).
 */
export class ClientSession {
  constructor(kind, transports, url) {
    this.kind = kind;
    this.transports = transports;
    this.url = url;
    this.sockets = [];
    this.managers = new Set();
  }

  /**
   * A socket on its own connection. `auth` is the CONNECT payload (v3/v4); v2 clients have no
   * auth payload, so for them it is sent as the query (handshake and namespace CONNECT).
   */
  socket(nsp = "/", { auth, query } = {}) {
    const opts = baseOptions(this.transports);
    if (this.kind.major >= 3) {
      if (auth !== undefined) opts.auth = auth;
      if (query) opts.query = query;
    } else if (auth || query) {
      opts.query = { ...(query || {}), ...(auth || {}) };
    }
    const s = this.kind.lookup(this.url + nsp, opts);
    this.sockets.push(s);
    this.managers.add(s.io);
    return s;
  }

  /** A Manager (one Engine.IO connection) and its `socket(nsp)` factory. */
  manager() {
    const m = new this.kind.Manager(this.url, baseOptions(this.transports));
    this.managers.add(m);
    return {
      manager: m,
      socket: (nsp) => {
        const s = m.socket(nsp);
        // v3/v4 Manager.socket() opens the socket as the Manager auto-connects; v2 does too.
        this.sockets.push(s);
        return s;
      },
    };
  }

  closeAll() {
    for (const s of this.sockets) {
      try {
        s.disconnect();
      } catch {}
    }
    for (const m of this.managers) {
      try {
        m.reconnection(false);
        if (typeof m._close === "function") m._close();
        else if (typeof m.close === "function") m.close();
        if (m.engine && m.engine.readyState !== "closed") m.engine.close();
      } catch {}
    }
  }
}

/** Emits with an acknowledgement; resolves with the ack's argument list (≤ 5 s). */
export function emitAck(socket, event, ...args) {
  return withTimeout(
    new Promise((resolve) => socket.emit(event, ...args, (...ackArgs) => resolve(ackArgs))),
    STEP_MS,
    `ack of "${event}"`,
  );
}

/** The Engine.IO transport name currently used by a socket's Manager. */
export function transportName(socket) {
  return socket.io.engine && socket.io.engine.transport && socket.io.engine.transport.name;
}

/**
 * Connect-error events of a socket, normalized to `{ message, data }`:
 * v3/v4 emit `connect_error` with an Error carrying `data`; v2 emits `error` with the packet data.
 */
export function connectErrorEvent(kind) {
  return kind.major >= 3 ? "connect_error" : "error";
}

export function normalizeConnectError(kind, args) {
  const e = args[0];
  if (kind.major >= 3) return { message: e && e.message, data: e && e.data };
  // v2: the ERROR packet data itself: a string, {message} or the middleware's `err.data`
  if (typeof e === "string") return { message: e, data: undefined };
  if (e && typeof e === "object" && typeof e.message === "string" && Object.keys(e).length === 1) {
    return { message: e.message, data: undefined };
  }
  return { message: undefined, data: e };
}
