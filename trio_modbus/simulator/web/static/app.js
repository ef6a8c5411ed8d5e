// The simulator's pages, made live: progressive enhancement of server-rendered HTML.
// Without this file every page works (its forms are plain GET forms); with it, tables follow
// the /api/v1 event streams. Data only ever reaches the page through textContent.

const CALL_ROWS = 500; // rows the calls table keeps (the newest)
const LOG_ROWS = 1000; // rows the log table keeps
const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text === null || text === undefined ? "" : String(text);
  if (className) element.className = className;
  return element;
}

async function postJSON(url, body, method = "POST") {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status}`);
  return response.status === 204 ? null : response.json();
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return response.json();
}

function stream(url, kind, onEvent) {
  const source = new EventSource(url);
  source.addEventListener(kind, (message) => onEvent(JSON.parse(message.data)));
  window.addEventListener("pagehide", () => source.close());
  return source;
}

function throttle(action, wait) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      action();
    }, wait);
  };
}

function pad(number, width) {
  return String(number).padStart(width, "0");
}

function hex2(value) {
  return pad(Number(value).toString(16).toUpperCase(), 2);
}

// -- registers --------------------------------------------------------------------------------

function registersPage() {
  const rows = new Map($$("#registers tbody tr").map((row) => [row.dataset.index, row]));
  if (rows.size === 0) return;
  const addresses = $$("#registers tbody tr").map((row) => Number(row.dataset.address));
  const first = Math.min(...addresses);
  const last = Math.max(...addresses);
  const refresh = async () => {
    const answer = await postJSON("/restapi/registers", {
      submit: "View",
      range_start: first,
      range_stop: last,
    });
    for (const register of answer.register_rows) {
      const row = rows.get(register.index);
      if (!row) continue;
      for (const [name, key] of [["value", "value"], ["reads", "count_read"], ["writes", "count_write"]]) {
        const target = $(`.${name}`, row);
        if (target.textContent !== register[key]) target.textContent = register[key];
      }
    }
  };
  const soon = throttle(() => refresh().catch(console.warn), 100);
  stream("/api/v1/calls/stream", "call", soon);
  setInterval(soon, 2000); // actions change values without a call
}

// -- calls ------------------------------------------------------------------------------------

function callResult(call) {
  let result;
  if (call.exception_code !== null) result = `exception ${hex2(call.exception_code)}`;
  else if (call.reply_hex === null || !call.delivered) result = "no reply";
  else result = "ok";
  if (call.faults.length) result += ` (${call.faults.join(", ")})`;
  return result;
}

function peerText(peer) {
  if (Array.isArray(peer) && peer.length >= 2) return `${peer[0]}:${peer[1]}`;
  return peer === null ? "" : String(peer);
}

function callRow(call) {
  const row = document.createElement("tr");
  row.dataset.seq = call.seq;
  row.dataset.unit = call.unit;
  row.dataset.function = call.function_code;
  row.dataset.address = call.address === null ? "" : call.address;
  row.dataset.count = call.count === null ? "" : call.count;
  row.dataset.spans = call.spans.map(([first, count]) => `${first}:${count}`).join(" ");
  const error = call.exception_code !== null || !call.delivered;
  row.dataset.error = error ? "1" : "0";
  const texts = [
    call.time.toFixed(3),
    peerText(call.peer),
    call.unit,
    call.function,
    call.address,
    call.count,
    call.transaction_id,
    call.latency === null ? "" : call.latency.toFixed(3),
    callResult(call),
    call.rule_id,
  ];
  for (const text of texts) row.append(cell("td", text));
  for (const [decoded, hex] of [[call.request, call.request_hex], [call.reply, call.reply_hex]]) {
    const both = document.createElement("td");
    both.append(cell("span", decoded, "decoded"), cell("code", hex, "hex"));
    row.append(both);
  }
  return row;
}

function callFilter(form) {
  const value = (name) => form.elements[name].value.trim();
  return {
    unit: value("f_unit"),
    function: value("f_function"),
    address: value("f_address"),
    errors: form.elements.f_errors.checked,
  };
}

function callMatches(row, filter) {
  if (filter.unit !== "" && row.dataset.unit !== String(Number(filter.unit))) return false;
  if (filter.function !== "" && row.dataset.function !== filter.function) return false;
  if (filter.address !== "") {
    // every range the request reads or writes (0x17 has two), as the server filters
    const wanted = Number(filter.address);
    const spans = row.dataset.spans === "" ? [] : row.dataset.spans.split(" ");
    const hit = spans.some((span) => {
      const [first, count] = span.split(":").map(Number);
      return first <= wanted && wanted < first + count;
    });
    if (!hit) return false;
  }
  if (filter.errors && row.dataset.error !== "1") return false;
  return true;
}

function callsPage() {
  const form = $("#call-filter");
  const table = $("#calls");
  const body = $("tbody", table);
  const status = $("#calls-status");
  const pause = $("#pause");
  const download = $("#download");
  let total = Number(status.dataset.total);
  let paused = false;
  let held = [];

  const showStatus = () => {
    const rows = $$("tr", body);
    const shown = rows.filter((row) => !row.classList.contains("is-hidden")).length;
    let text = `Showing ${shown} of ${total} calls`;
    if (total > rows.length) text += ` (the table keeps the newest ${CALL_ROWS})`;
    if (paused) text += `; paused, ${held.length} new held`;
    status.textContent = `${text}.`;
  };
  const applyFilter = () => {
    const filter = callFilter(form);
    for (const row of $$("tr", body)) row.classList.toggle("is-hidden", !callMatches(row, filter));
    const query = new URLSearchParams({ download: "jsonl" });
    for (const key of ["unit", "function", "address"]) if (filter[key] !== "") query.set(`f_${key}`, filter[key]);
    if (filter.errors) query.set("f_errors", "1");
    download.href = `/api/calls?${query}`;
    showStatus();
  };
  const applyView = () => {
    const hex = form.elements.view.value === "hex";
    table.classList.toggle("view-hex", hex);
    table.classList.toggle("view-decoded", !hex);
  };
  const add = (calls) => {
    const filter = callFilter(form);
    const fragment = document.createDocumentFragment();
    for (const call of calls.slice(-CALL_ROWS).reverse()) {
      const row = callRow(call);
      row.classList.toggle("is-hidden", !callMatches(row, filter));
      fragment.append(row);
    }
    body.prepend(fragment);
    while (body.rows.length > CALL_ROWS) body.lastElementChild.remove();
  };

  // the server's rows stay; the filter only hides rows, so show every call from here on
  for (const name of ["f_unit", "f_function", "f_address", "f_errors"]) {
    form.elements[name].addEventListener("input", applyFilter);
    form.elements[name].addEventListener("change", applyFilter);
  }
  for (const radio of form.elements.view) radio.addEventListener("change", applyView);
  pause.hidden = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      add(held);
      held = [];
    }
    showStatus();
  });

  let pending = [];
  const flush = throttle(() => {
    const calls = pending;
    pending = [];
    if (paused) {
      held.push(...calls);
      if (held.length > CALL_ROWS) held = held.slice(-CALL_ROWS); // the table keeps no more
    } else add(calls);
    showStatus();
  }, 50);
  stream(`/api/v1/calls/stream?since=${status.dataset.latest}`, "call", (call) => {
    total += 1;
    pending.push(call);
    flush();
  });
  applyView();
  applyFilter();
}

// -- faults -----------------------------------------------------------------------------------

const RULE_KEYS = new Set([
  "id", "action", "phase", "unit", "function", "sub_function", "address", "nth", "connection",
  "times", "skip", "duration", "probability", "seed", "matched", "fired", "remaining", "expires_in",
]);
const MATCH_KEYS = ["unit", "function", "sub_function", "address", "nth", "connection"];

function ruleRow(rule) {
  const row = document.createElement("tr");
  row.dataset.rule = rule.id;
  const parameters = Object.entries(rule)
    .filter(([key]) => !RULE_KEYS.has(key))
    .map(([key, value]) => `${key}=${formatValue(value)}`)
    .join(", ");
  const match = MATCH_KEYS.filter((key) => key in rule)
    .map((key) => `${key}=${formatValue(rule[key])}`)
    .join(" ");
  row.append(cell("th", rule.id));
  row.firstChild.scope = "row";
  for (const text of [
    rule.action,
    parameters || "none",
    match || "any request",
    rule.phase,
    `${rule.fired} of ${rule.matched} matched`,
    rule.remaining === null ? "unlimited" : rule.remaining,
    rule.expires_in === null ? "never" : rule.expires_in.toFixed(1),
  ]) {
    row.append(cell("td", text));
  }
  const form = document.createElement("form");
  form.action = "/api/faults";
  form.method = "get";
  const hidden = document.createElement("input");
  Object.assign(hidden, { type: "hidden", name: "rule", value: String(rule.id) });
  const button = cell("button", "Delete");
  Object.assign(button, { type: "submit", name: "submit", value: "Delete" });
  button.setAttribute("aria-label", `Delete rule ${rule.id}`);
  form.append(hidden, button);
  const last = document.createElement("td");
  last.append(form);
  row.append(last);
  return row;
}

function formatValue(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null) return "None";
  if (Array.isArray(value)) return `[${value.join(", ")}]`;
  return String(value);
}

function faultsPage() {
  const body = $("#rules tbody");
  const foot = $("#rules-foot");
  const refresh = async () => {
    const answer = await getJSON("/api/v1/faults");
    const focused = document.activeElement && body.contains(document.activeElement);
    if (focused) return; // keep a keyboard user's place
    body.replaceChildren(...answer.faults.map(ruleRow));
    foot.textContent = `${answer.faults.length} rule(s)`;
  };
  const soon = throttle(() => refresh().catch(console.warn), 100);
  stream("/api/v1/calls/stream", "call", soon);
  setInterval(soon, 1000); // durations run out without calls
}

// -- log --------------------------------------------------------------------------------------

function logPage() {
  const body = $("#log tbody");
  const level = $("#l-level");
  const foot = $("#log-foot");
  const rank = (name) => (LEVELS.includes(name) ? LEVELS.indexOf(name) : LEVELS.length);
  const applyLevel = () => {
    const floor = rank(level.value);
    for (const row of $$("tr", body)) row.classList.toggle("is-hidden", rank(row.dataset.level) < floor);
    showCount();
  };
  const showCount = () => {
    const shown = $$("tr", body).filter((row) => !row.classList.contains("is-hidden")).length;
    foot.textContent = shown === body.rows.length
      ? `${shown} log entries`
      : `${shown} of ${body.rows.length} log entries`;
  };
  level.addEventListener("change", applyLevel);
  const clock = (seconds) => {
    const date = new Date(seconds * 1000);
    const hms = [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => pad(n, 2)).join(":");
    return `${hms}.${pad(date.getMilliseconds(), 3)}`;
  };
  const last = body.lastElementChild;
  const since = last ? `?since=${last.dataset.seq}` : "";
  stream(`/api/v1/log/stream${since}`, "log", (line) => {
    const row = document.createElement("tr");
    row.dataset.seq = line.seq;
    row.dataset.level = line.level;
    row.append(cell("td", clock(line.time)), cell("td", line.level), cell("td", line.logger));
    row.append(cell("td", line.message, "message-cell"));
    row.classList.toggle("is-hidden", rank(line.level) < rank(level.value));
    body.append(row);
    while (body.rows.length > LOG_ROWS) body.firstElementChild.remove();
    showCount();
  });
  applyLevel();
}

// -- server -----------------------------------------------------------------------------------

function serverPage() {
  const uptime = $("#uptime");
  if (uptime.dataset.uptime === "") return;
  const base = Number(uptime.dataset.uptime);
  const loaded = performance.now();
  setInterval(() => {
    uptime.textContent = Math.floor(base + (performance.now() - loaded) / 1000);
  }, 250);
  const clients = $("#clients tbody");
  const showClients = (peers) => {
    const shown = $$("td", clients).map((td) => td.textContent);
    if (peers.join("\n") === shown.join("\n")) return;
    clients.replaceChildren(...peers.map((peer) => {
      const row = document.createElement("tr");
      row.append(cell("td", peer));
      return row;
    }));
  };
  const refresh = async () => {
    const status = await getJSON("/api/v1/status");
    const address = status.modbus.address;
    const where = Array.isArray(address) ? address.join(":") : String(address);
    $("#modbus-listener").textContent =
      `${status.modbus.comm} ${where}${status.modbus.listening ? "" : " (stopped)"}`;
    showClients(status.modbus.clients.map((peer) => Array.isArray(peer) ? peer.join(":") : String(peer)));
    $("#calls-count").textContent = status.calls;
    $("#faults-count").textContent = status.faults;
    for (const [name, value] of Object.entries(status.statistics)) {
      const row = $(`tr[data-counter="${CSS.escape(name)}"] td`);
      if (row) row.textContent = value;
    }
  };
  setInterval(() => refresh().catch(console.warn), 1000);
}

// -- start ------------------------------------------------------------------------------------

const pages = { registers: registersPage, calls: callsPage, faults: faultsPage, log: logPage, server: serverPage };

function start() {
  for (const element of $$("[data-js-only]")) element.hidden = false;
  const page = pages[document.body.dataset.page];
  if (page) page();
  window.simulatorReady = performance.now();
  document.documentElement.dataset.ready = "1";
}

start();
