// Emits through the official @socket.io/redis-emitter, for Ferrio's interop tests.
// Usage: node emit.js <redis-url>
"use strict";
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

async function main() {
  const [url] = process.argv.slice(2);
  const client = createClient({ url });
  await client.connect();
  const emitter = new Emitter(client);
  emitter.emit("from-emitter", { n: 1 }, Buffer.from([1, 2, 3]));
  emitter.to("vip").emit("vip-only", "x");
  emitter.except("vip").emit("not-vip", 2.5);
  emitter.in("vip").socketsJoin("vip2");
  await client.quit();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
