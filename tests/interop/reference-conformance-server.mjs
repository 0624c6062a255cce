// Reference for the `/engine.io/` endpoint of Ferrio's `examples/conformance_server`
// (see /work/shared/interop/PROTOCOL-SUITES.md): a bare Engine.IO server on the Node `engine.io`
// 6.6 package, with pingInterval 300, pingTimeout 200, maxPayload 1000000, EIO=3 accepted, that
// echoes every message back (text and binary). It exists only to validate engineio.test.mjs.
//
//   PORT=3000 HOST=127.0.0.1 node reference-conformance-server.mjs
import http from "node:http";
import { Server } from "engine.io";

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || "127.0.0.1";

const httpServer = http.createServer();
const engine = new Server({
  path: "/engine.io/",
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  allowEIO3: true,
  cors: { origin: "*" },
});
engine.attach(httpServer, { path: "/engine.io/" });

engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.listen(PORT, HOST, () => {
  console.log(`reference engine.io echo server listening on http://${HOST}:${PORT}/engine.io/`);
});

const stop = () => {
  engine.close();
  httpServer.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
