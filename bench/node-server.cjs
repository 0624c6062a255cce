// The Node reference server of the side-by-side benchmarks: implements
// shared/bench/CONTRACT.md exactly as examples/bench_server does.
//
// PORT=<port> HOST=127.0.0.1 node bench/node-server.cjs
// Engine.IO v4 over a direct WebSocket (pingInterval 25000, pingTimeout 20000), namespace "/":
// - echo: ack with the same arguments;
// - join <room>: join, then ack with no arguments;
// - broadcast <room> <payload>: emit bcast <payload> to the room, then ack with no arguments.
// Logs nothing per connection or message; exits at once on SIGTERM.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  transports: ["polling", "websocket"],
  pingInterval: 25000,
  pingTimeout: 20000,
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  cors: undefined,
});

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("broadcast", (room, payload, ack) => {
    io.to(room).emit("bcast", payload);
    if (typeof ack === "function") ack();
  });
});

httpServer.on("connection", (tcp) => tcp.setNoDelay(true));
httpServer.listen(port, host);

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
