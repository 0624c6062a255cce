// Ferrio admin page: every figure and action is a call to this node's HTTP API (/api/v1) with
// the key typed in above, kept in this tab's sessionStorage only. What clients control (user
// ids, room names, arguments) is put into the page as text nodes, never as markup.
"use strict";

const KEY_STORAGE = "ferrio-admin-key";
const REFRESH_MS = 2000;

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  namespace: "/",
  room: "",
  timer: null,
  busy: false,
};

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

/** An API call; resolves with the JSON answer, rejects with the API's own error message. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  if (!response.ok) {
    const error = new Error(answer && answer.error ? answer.error : `HTTP ${response.status}`);
    error.code = answer && answer.code;
    throw error;
  }
  return answer;
}

function showError(error) {
  const box = $("error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.hidden = false;
  box.textContent =
    error.code === "api_disabled"
      ? "The HTTP API of this node is off: set api.key (ferrio config init generates one), then restart it."
      : `${error.message}${error.code ? ` (${error.code})` : ""}`;
}

function replaceRows(tbody, rows, emptyText, columns) {
  tbody.replaceChildren(
    ...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: String(columns) }, emptyText))]),
  );
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value !== undefined) search.set(name, value);
  return `?${search}`;
}

function since(millis) {
  const seconds = Math.max(0, Math.round((Date.now() - millis) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`;
}

function renderStats(stats) {
  $("conn-total").textContent = stats.connections.total;
  $("conn-websocket").textContent = stats.connections.websocket;
  $("conn-polling").textContent = stats.connections.polling;
  const names = Object.keys(stats.namespaces);
  if (!names.includes(state.namespace)) names.unshift(state.namespace);
  const rows = names.map((name) => {
    const ns = stats.namespaces[name] || { sockets: 0, rooms: {} };
    const link = el("button", { type: "button", class: "link", onclick: () => selectNamespace(name) }, name);
    return el(
      "tr",
      { class: name === state.namespace ? "selected" : "", "data-namespace": name },
      el("td", {}, link),
      el("td", {}, ns.sockets),
      el("td", {}, Object.keys(ns.rooms).length),
    );
  });
  replaceRows($("namespaces"), rows, "no namespace", 3);
}

function renderRooms(rooms) {
  const rows = rooms.rooms.map((room) =>
    el(
      "tr",
      { "data-room": room.name, class: room.name === state.room ? "selected" : "" },
      el("td", {}, el("button", { type: "button", class: "link", onclick: () => selectRoom(room.name) }, room.name)),
      el("td", {}, room.sockets),
    ),
  );
  replaceRows($("rooms"), rows, "no room", 2);
}

function renderSockets(sockets) {
  const rows = sockets.sockets.map((socket) =>
    el(
      "tr",
      { "data-socket": socket.id },
      el("td", { class: "mono" }, socket.id),
      el("td", {}, socket.user === null ? "anonymous" : socket.user),
      el("td", {}, socket.transport),
      el("td", { class: "mono" }, socket.address),
      el("td", { title: new Date(socket.connected_at).toISOString() }, since(socket.connected_at)),
      el("td", {}, socket.rooms.join(", ")),
      el(
        "td",
        { class: "actions" },
        el("button", { type: "button", class: "disconnect", onclick: () => disconnect(socket.id, false) }, "Disconnect"),
        el(
          "button",
          {
            type: "button",
            class: "close",
            title: "close the whole connection: the client reconnects",
            onclick: () => disconnect(socket.id, true),
          },
          "Close connection",
        ),
      ),
    ),
  );
  replaceRows($("sockets"), rows, state.room ? "no socket in this room" : "no socket", 7);
}

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    const ready = await fetch("/ready", { cache: "no-store" }).then(
      async (r) => ({ ok: r.ok, text: (await r.text()).trim() }),
      () => ({ ok: false, text: "unreachable" }),
    );
    const badge = $("readiness");
    badge.textContent = ready.ok ? ready.text : `not ready: ${ready.text}`;
    badge.className = `badge ${ready.ok ? "ok" : "bad"}`;
    if (!state.key) {
      $("need-key").hidden = false;
      $("dashboard").hidden = true;
      return;
    }
    $("need-key").hidden = true;
    const ns = state.namespace;
    const [stats, rooms, sockets] = await Promise.all([
      api("GET", "/stats"),
      api("GET", `/rooms${query({ namespace: ns })}`),
      api("GET", `/sockets${query({ namespace: ns, room: state.room })}`),
    ]);
    renderStats(stats);
    renderRooms(rooms);
    renderSockets(sockets);
    $("dashboard").hidden = false;
    showError(null);
  } catch (error) {
    showError(error);
    if (error.code === "unauthorized" || error.code === "api_disabled") $("dashboard").hidden = true;
  } finally {
    state.busy = false;
  }
}

function selectNamespace(name) {
  state.namespace = name;
  state.room = "";
  for (const node of document.querySelectorAll(".ns-name")) node.textContent = name;
  showRoomFilter();
  refresh();
}

function selectRoom(name) {
  state.room = name;
  showRoomFilter();
  refresh();
}

function showRoomFilter() {
  $("room-filter").hidden = !state.room;
  $("room-filter-name").textContent = state.room;
}

async function disconnect(id, close) {
  try {
    await api("POST", "/sockets/disconnect", { namespace: state.namespace, select: { sockets: [id] }, close });
    showError(null);
  } catch (error) {
    showError(error);
  }
  refresh();
}

async function emit(event) {
  event.preventDefault();
  const out = $("emit-result");
  const body = { namespace: state.namespace, event: $("emit-event").value.trim() };
  const room = $("emit-room").value.trim();
  const socket = $("emit-socket").value.trim();
  if (room) body.rooms = [room];
  if (socket) body.sockets = [socket];
  const data = $("emit-data").value.trim();
  if (data) {
    try {
      body.data = JSON.parse(data);
    } catch (error) {
      out.textContent = `data is not JSON: ${error.message}`;
      out.className = "bad";
      return;
    }
  }
  try {
    const answer = await api("POST", "/emit", body);
    out.textContent = `sent to ${answer.recipients} socket(s) of this node${
      answer.offsets ? `, history offsets ${JSON.stringify(answer.offsets)}` : ""
    }`;
    out.className = "ok";
  } catch (error) {
    out.textContent = `${error.message}${error.code ? ` (${error.code})` : ""}`;
    out.className = "bad";
  }
  refresh();
}

async function membership(action) {
  const out = $("membership-result");
  const socket = $("membership-socket").value.trim();
  const room = $("membership-room").value.trim();
  if (!socket || !room) {
    out.textContent = "give a socket id and a room";
    out.className = "bad";
    return;
  }
  try {
    const answer = await api("POST", `/sockets/${action}`, {
      namespace: state.namespace,
      select: { sockets: [socket] },
      rooms: [room],
    });
    out.textContent = `${action === "join" ? "joined" : "left"}: ${answer.matched} socket(s)`;
    out.className = answer.matched ? "ok" : "bad";
  } catch (error) {
    out.textContent = `${error.message}${error.code ? ` (${error.code})` : ""}`;
    out.className = "bad";
  }
  refresh();
}

async function readHistory(event) {
  event.preventDefault();
  const out = $("history-result");
  const room = $("history-room").value.trim();
  const path = `/rooms/${encodeURIComponent(room)}/history${query({
    namespace: state.namespace,
    after: $("history-after").value.trim(),
    limit: $("history-limit").value.trim(),
  })}`;
  try {
    const page = await api("GET", path);
    const rows = page.messages.map((message) =>
      el(
        "tr",
        { "data-offset": String(message.offset) },
        el("td", { class: "mono" }, message.offset),
        el("td", {}, new Date(message.at).toISOString()),
        el("td", {}, message.event),
        el("td", { class: "mono" }, JSON.stringify(message.args)),
      ),
    );
    replaceRows($("history"), rows, "no message", 4);
    out.textContent = `${page.messages.length} message(s)${page.more ? `; more after ${page.next}` : ""}`;
    out.className = "ok";
    if (page.next !== null && page.next !== undefined) $("history-after").value = page.more ? page.next : "";
  } catch (error) {
    replaceRows($("history"), [], "", 4);
    out.textContent = `${error.message}${error.code ? ` (${error.code})` : ""}`;
    out.className = "bad";
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = $("auto-refresh").checked ? setInterval(refresh, REFRESH_MS) : null;
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = state.key;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key").value.trim();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    refresh();
  });
  $("key-forget").addEventListener("click", () => {
    state.key = "";
    $("key").value = "";
    sessionStorage.removeItem(KEY_STORAGE);
    showError(null);
    refresh();
  });
  $("room-filter-clear").addEventListener("click", () => selectRoom(""));
  $("emit-form").addEventListener("submit", emit);
  $("membership-form").addEventListener("submit", (event) => {
    event.preventDefault();
    membership("join");
  });
  $("membership-leave").addEventListener("click", () => membership("leave"));
  $("history-form").addEventListener("submit", readHistory);
  $("auto-refresh").addEventListener("change", schedule);
  schedule();
  refresh();
});
