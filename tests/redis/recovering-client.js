// The official socket.io-client v4 (tests/interop's `sio-client-v4`), driven line by line by
// crates/redis-adapter/tests/recovery.rs: it connects to the node given as argument, reports
// on stdout (one JSON object a line) every connect (its id and `socket.recovered`), disconnect
// and event, and on stdin `connect URL` makes it connect again, through URL, as a client that
// lost its connection does (with its pid and last offset). It never reconnects by itself.
const path = require("path");
const readline = require("readline");
const { io } = require(path.join(__dirname, "../interop/node_modules/sio-client-v4"));

const out = (object) => process.stdout.write(JSON.stringify(object) + "\n");
const socket = io(process.argv[2], { transports: ["websocket"], reconnection: false, forceNew: true });
socket.on("connect", () => out({ connect: { id: socket.id, recovered: socket.recovered } }));
socket.on("disconnect", (reason) => out({ disconnect: reason }));
socket.on("connect_error", (error) => out({ connect_error: String(error.message) }));
socket.onAny((event, ...args) => out({ event, args }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [command, url] = line.split(" ");
  if (command === "connect") {
    // The manager opens its next connection on this URL (the way a load balancer would pick
    // another node).
    socket.io.uri = url;
    socket.connect();
  } else if (command === "exit") {
    socket.disconnect();
    process.exit(0);
  }
});
