// The official Node `socket.io` server, for ferrio-client's interop tests (tests/node.rs).
//
// Listens on 127.0.0.1 on a free port and prints `{"port": N}` as its first line of output.
// Exits when its standard input closes, so it never outlives the test that spawned it.
//
// Run with NODE_PATH pointing at tests/interop/node_modules. With TLS_CERT and TLS_KEY (PEM
// files) it serves https instead of http.

"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const { Server } = require("socket.io");

const httpServer = process.env.TLS_CERT
  ? https.createServer({
      cert: fs.readFileSync(process.env.TLS_CERT),
      key: fs.readFileSync(process.env.TLS_KEY),
    })
  : http.createServer();
const io = new Server(httpServer, {
  pingInterval: 300,
  pingTimeout: 400,
  connectionStateRecovery: {
    maxDisconnectionDuration: 60000,
    skipMiddlewares: true,
  },
});

io.on("connection", (socket) => {
  socket.emit("welcome", {
    id: socket.id,
    recovered: socket.recovered,
    transport: socket.conn.transport.name,
  });
  socket.conn.on("upgrade", (transport) => socket.emit("upgraded", transport.name));

  // Echo every argument back, binary ones as binary.
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  // Acknowledge with the arguments.
  socket.on("ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
  // Acknowledge with binary data.
  socket.on("binary", (ack) => ack(Buffer.from([1, 2, 3]), { nested: Buffer.from("hé") }));
  // Ask the client, and report what came back.
  socket.on("ask", async (question, ack) => {
    try {
      const answer = await socket.timeout(2000).emitWithAck("question", question);
      ack({ answer });
    } catch (error) {
      ack({ error: error.message });
    }
  });
  socket.on("transport", (ack) => ack(socket.conn.transport.name));
  // Disconnect from the namespace: the client must not reconnect.
  socket.on("kick", () => socket.disconnect());
  // Cut the connection, then broadcast while the client is away: it reconnects, recovers
  // its session, and receives what it missed.
  socket.on("drop", () => {
    socket.conn.close();
    setTimeout(() => {
      io.emit("missed", 1);
      io.emit("missed", 2);
    }, 100);
  });
});

const admin = io.of("/admin");
admin.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") {
    next();
  } else {
    const error = new Error("not authorized");
    error.data = { code: 401 };
    next(error);
  }
});
admin.on("connection", (socket) => {
  socket.on("whoami", (ack) => ack({ nsp: socket.nsp.name, auth: socket.handshake.auth }));
});

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + "\n");
});

process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
