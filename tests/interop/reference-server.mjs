// Reference implementation of /work/shared/interop/CONTRACT.md (client-matrix contract v1) on the
// Node `socket.io` 4.8 server. It exists only to validate the interop tests themselves: every cell
// of socketio-matrix.test.mjs and of python/ must pass against it before it is used to judge
// Ferrio's `examples/interop_server`.
//
//   PORT=3001 HOST=127.0.0.1 node reference-server.mjs
import http from "node:http";
import { Server } from "socket.io";

const PORT = Number(process.env.PORT || 3001);
const HOST = process.env.HOST || "127.0.0.1";

const httpServer = http.createServer();
const io = new Server(httpServer, {
  allowEIO3: true,
  cors: { origin: "*" },
  connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true },
});

const BAD = { ok: false, error: "bad request" };
const RESERVED = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v);
const isEventName = (v) => typeof v === "string" && !RESERVED.has(v);

/** Splits a handler's arguments into (args, ack-or-undefined). */
function splitAck(args) {
  if (args.length && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, undefined];
}

/**
 * Emulates a network failure of the socket's Engine.IO connection: nothing (no DISCONNECT, no
 * Engine.IO CLOSE packet) reaches the client. The server sees a transport failure.
 */
function dropTransport(socket) {
  const conn = socket.conn;
  const transport = conn.transport;
  if (transport.name === "websocket") {
    // destroys the TCP connection without a close frame -> "transport close" server-side
    transport.socket.terminate();
    return;
  }
  // polling: never write anything more to this session (in particular no CLOSE packet to a
  // pending GET), reset the pending long-poll GET, and discard the session so that later
  // requests with this sid get HTTP 400.
  transport.writable = false;
  transport.send = () => {};
  transport.on("error", () => {});
  const pending = transport.req;
  conn.onClose("transport error");
  if (pending) pending.socket.destroy();
}

function registerContract(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("welcome", {
      sid: socket.id,
      nsp: nsp.name,
      recovered: socket.recovered === true,
      auth: socket.handshake.auth ?? {},
    });

    socket.on("echo", (...raw) => {
      const [args, ack] = splitAck(raw);
      if (ack) ack(...args);
    });

    socket.on("echo-event", (...raw) => {
      const [args, ack] = splitAck(raw);
      socket.emit("echo-event-back", ...args);
      if (ack) ack({ ok: true });
    });

    socket.on("push", (...raw) => {
      const [[p], ack] = splitAck(raw);
      if (!isObject(p) || !isEventName(p.event)) return ack?.(BAD);
      socket.emit(p.event, p.data);
      ack?.({ ok: true });
    });

    socket.on("request-ack", (...raw) => {
      const [[p], ack] = splitAck(raw);
      if (!isObject(p) || !isEventName(p.event)) return ack?.(BAD);
      socket.timeout(5000).emit(p.event, p.data, (err, ...reply) => {
        ack?.(err ? { error: "timeout" } : { reply });
      });
    });

    socket.on("join", (...raw) => {
      const [[p], ack] = splitAck(raw);
      if (!isObject(p) || typeof p.room !== "string") return ack?.(BAD);
      socket.join(p.room);
      ack?.({ room: p.room, joined: true });
    });

    socket.on("leave", (...raw) => {
      const [[p], ack] = splitAck(raw);
      if (!isObject(p) || typeof p.room !== "string") return ack?.(BAD);
      socket.leave(p.room);
      ack?.({ room: p.room, left: true });
    });

    socket.on("to-room", (...raw) => {
      const [[p], ack] = splitAck(raw);
      if (!isObject(p) || typeof p.room !== "string" || !isEventName(p.event)) return ack?.(BAD);
      nsp.to(p.room).emit(p.event, p.data);
      ack?.({ ok: true });
    });

    socket.on("server-disconnect-me", () => {
      // sends 41<nsp> and then closes the underlying Engine.IO connection
      socket.disconnect(true);
    });

    socket.on("drop-transport", (...raw) => {
      const [[p], ack] = splitAck(raw);
      if (p !== undefined && p !== null && !(isObject(p) && (p.missed === undefined ||
          (isObject(p.missed) && isEventName(p.missed.event))))) {
        return ack?.(BAD);
      }
      const missed = p?.missed;
      const oldId = socket.id;
      if (missed) {
        // runs after the session has been persisted for recovery (CSR)
        socket.once("disconnect", () => {
          nsp.to(oldId).emit(missed.event, missed.data);
        });
      }
      dropTransport(socket);
    });
  });
}

registerContract(io.of("/"));
registerContract(io.of("/chat"));

const priv = io.of("/private");
priv.use((socket, next) => {
  const auth = socket.handshake.auth ?? {};
  const ok =
    auth.token !== undefined && auth.token !== null
      ? auth.token === "secret"
      : socket.handshake.query?.token === "secret";
  if (ok) return next();
  const err = new Error("unauthorized");
  err.data = { reason: "bad token" };
  next(err);
});
registerContract(priv);

httpServer.listen(PORT, HOST, () => {
  console.log(`reference interop server (socket.io 4.8) listening on http://${HOST}:${PORT}`);
});

const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
