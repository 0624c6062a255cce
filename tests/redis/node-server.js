// A Node Socket.IO server with the official Redis adapter, for Ferrio's interop tests
// (crates/redis-adapter/tests/interop_node.rs).
// Usage: node node-server.js <redis-url>; prints "ready <port>" once listening on 127.0.0.1.
"use strict";
const { createServer } = require("http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");

async function main() {
  const [url] = process.argv.slice(2);
  const pub = createClient({ url });
  const sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pub, sub, { requestsTimeout: 3000 }),
  });
  // Server-side events from other nodes: the last one seen is kept for "last-server-event".
  let lastServerEvent = null;
  io.on("from-ferrio", (...args) => {
    lastServerEvent = args;
  });
  io.on("question", (n, cb) => cb({ node: n + 1 }));
  io.on("connection", (socket) => {
    socket.on("last-server-event", (cb) => cb(lastServerEvent));
    socket.on("server-emit", (...args) => io.serverSideEmit("from-node", ...args));
    socket.on("server-ask", async (cb) => {
      try {
        cb(await io.serverSideEmitWithAck("question", 41));
      } catch (err) {
        cb({ error: String(err) });
      }
    });
    socket.on("relay", (name, ...args) => io.emit(name, ...args));
    socket.on("relay-to", (room, name, ...args) => io.to(room).emit(name, ...args));
    socket.on("join", (room, cb) => {
      socket.join(room);
      cb();
    });
    socket.on("fetch", async (cb) => {
      const sockets = await io.fetchSockets();
      cb(sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort() })));
    });
    socket.on("ask", async (cb) => {
      const answers = await io.timeout(3000).emitWithAck("q", 1);
      cb(answers.sort());
    });
    socket.on("join-all", (room) => io.socketsJoin(room));
    socket.on("all-rooms", async (cb) => {
      const rooms = await io.of("/").adapter.allRooms();
      cb([...rooms].sort());
    });
  });
  httpServer.listen(0, "127.0.0.1", () => {
    console.log(`ready ${httpServer.address().port}`);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
