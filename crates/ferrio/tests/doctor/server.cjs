// The official Node `socket.io` server, for the `ferrio doctor` tests (tests/doctor.rs).
//
// Listens on 127.0.0.1 on a free port and prints `{"port": N}` as its first line of output.
// Exits when its standard input closes, so it never outlives the test that spawned it.
// Run with NODE_PATH pointing at tests/interop/node_modules; ORIGIN is the origin CORS allows.
// With TLS_CERT and TLS_KEY (PEM files) it serves https instead of http.

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
  pingInterval: 400,
  pingTimeout: 400,
  cors: { origin: process.env.ORIGIN, credentials: true },
});

io.on("connection", (socket) => {
  socket.on("ferrio:doctor", (data, ack) => ack(data));
});

httpServer.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: httpServer.address().port }));
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
