// The activebatch labelling page: shows the current batch one item at a time.
// Every action goes through one promise chain, so quick key presses are handled in order.
"use strict";

const KEYS = "1234567890abcdefghijklmnopqrstuvwxyz".split("");
const $ = (id) => document.getElementById(id);

const page = {
  classes: [],
  keyToClass: {},
  current: null,      // the item on screen
  history: [],        // ids this annotator labelled here, most recent last (for undo)
  skipped: [],        // ids skipped in this round
  round: 0,
  polling: null,
};
let chain = Promise.resolve();

function enqueue(action) {
  chain = chain.then(action).catch((err) => showMessage(String(err.message || err), true));
  return chain;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  let data = {};
  try { data = await res.json(); } catch (e) { data = {error: `HTTP ${res.status}`}; }
  return {ok: res.ok, status: res.status, data};
}

function annotator() {
  return $("annotator").value.trim();
}

// Labels are recorded under the annotator's name, so there is no shared default: the page asks
// for a name first. (Items are held for this browser by the server, whatever the name.)
function needName() {
  if (annotator()) {
    $("annotator").classList.remove("needed");
    return false;
  }
  $("annotator").classList.add("needed");
  $("annotator").focus();
  return true;
}

function showMessage(text, isError) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function renderProgress(batch) {
  const total = batch.total || 0;
  const done = batch.labelled || 0;
  const bar = $("progress");
  bar.setAttribute("aria-valuemax", String(total));
  bar.setAttribute("aria-valuenow", String(done));
  $("progress-fill").style.width = total ? `${(100 * done) / total}%` : "0";
  $("progress-text").textContent = total ? `${done} / ${total} labelled in round ${batch.round}` :
    "no batch yet: train and fetch the first batch below";
  $("round").textContent = batch.round || "-";
}

function assignKeys(classes) {
  // A class named by a single key character gets that key ("7" -> 7); the others get the
  // remaining keys in order.
  const keys = {};
  const used = new Set();
  for (const name of classes) {
    const k = name.toLowerCase();
    if (k.length === 1 && KEYS.includes(k) && !used.has(k)) { keys[name] = k; used.add(k); }
  }
  const free = KEYS.filter((k) => !used.has(k));
  for (const name of classes) {
    if (!(name in keys) && free.length) keys[name] = free.shift();
  }
  return keys;
}

function renderClasses() {
  const box = $("classes");
  box.textContent = "";
  page.keyToClass = {};
  const keys = assignKeys(page.classes);
  page.classes.forEach((name) => {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "class-btn";
    btn.dataset.class = name;
    btn.textContent = name;
    if (keys[name] !== undefined) {
      const kbd = document.createElement("kbd");
      kbd.textContent = keys[name];
      btn.dataset.key = keys[name];
      btn.appendChild(kbd);
      page.keyToClass[keys[name]] = name;
    }
    btn.addEventListener("click", () => enqueue(() => labelCurrent(name)));
    box.appendChild(btn);
  });
}

function rowTable(row) {
  const table = document.createElement("table");
  for (const [k, v] of Object.entries(row)) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = k;
    const td = document.createElement("td");
    td.textContent = v === null ? "" : String(v);
    tr.append(th, td);
    table.appendChild(tr);
  }
  return table;
}

function renderItem(item, info) {
  const box = $("item");
  box.textContent = "";
  page.current = item;
  box.dataset.itemId = item ? item.id : "";
  $("prediction").textContent = "";
  $("skipped-btn").hidden = true;
  document.querySelectorAll(".class-btn").forEach((b) => { b.disabled = !item; });
  if (!item) {
    const p = document.createElement("p");
    if (info && info.needName) {
      p.className = "empty";
      p.id = "need-name";
      p.textContent = "Enter your name above to start labelling (it is recorded with each label).";
    } else if (info && info.round === 0) {
      p.className = "empty";
      p.textContent = "No batch yet. Train and fetch the first batch below.";
    } else if (info && info.remaining === 0) {
      p.className = "done";
      p.id = "done";
      p.textContent = "This batch is fully labelled. Train and fetch the next batch below.";
    } else if (info && info.skipped > 0) {
      p.className = "empty";
      p.textContent = `You skipped ${info.skipped} item(s) that are still unlabelled.`;
      $("skipped-btn").hidden = false;
    } else {
      p.className = "empty";
      p.textContent = `The remaining ${info ? info.remaining : ""} item(s) are being labelled by others.`;
    }
    box.appendChild(p);
    return;
  }
  if (item.image) {
    const img = document.createElement("img");
    img.src = item.image;
    img.alt = `item ${item.id}`;
    box.appendChild(img);
  } else if (typeof item.text === "string") {
    const text = document.createElement("div");
    text.className = "item-text";
    text.textContent = item.text;   // set as text, never parsed as HTML
    box.appendChild(text);
    if (item.row) box.appendChild(rowTable(item.row));
  } else if (item.row) {
    box.appendChild(rowTable(item.row));
  }
  const id = document.createElement("div");
  id.className = "item-id";
  id.textContent = `id ${item.id}` + (item.rank !== null ? ` · #${item.rank + 1} of the batch` : "");
  box.appendChild(id);
  if (item.predicted !== null && $("show-guess").checked) {
    const conf = item.confidence === null ? "" : ` (${Math.round(100 * item.confidence)}%)`;
    $("prediction").textContent = `model's guess: ${item.predicted}${conf}`;
  }
}

async function refreshState() {
  const {ok, data} = await api("/api/state");
  if (!ok) throw new Error(data.error || "cannot read the workspace state");
  $("workspace-name").textContent = data.workspace;
  if (page.classes.join("\u0000") !== data.classes.join("\u0000")) {
    page.classes = data.classes;
    renderClasses();
  }
  if (data.batch.round !== page.round) {
    page.round = data.batch.round;
    page.history = [];
    page.skipped = [];
  }
  renderProgress(data.batch);
  $("stopping").textContent = data.stopping || "";
  const sel = $("strategy");
  if (!sel.options.length) {
    for (const name of data.strategies) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = name;
      sel.appendChild(opt);
    }
    sel.value = data.last_query.strategy;
    $("batch-size").value = data.last_query.n;
  }
  renderTraining(data.training);
  return data;
}

function renderTraining(t) {
  const el = $("train-status");
  $("train-btn").disabled = !!t.running;
  el.className = t.error ? "error" : "";
  el.textContent = t.error ? `failed: ${t.error}` : (t.message || "");
}

async function showNext(preferId) {
  if (needName()) {
    renderItem(null, {needName: true});
    return;
  }
  const params = new URLSearchParams({annotator: annotator()});
  for (const id of page.skipped) params.append("skip", id);
  if (preferId) params.set("prefer", preferId);
  const {ok, data} = await api(`/api/next?${params}`);
  if (!ok) throw new Error(data.error || "cannot fetch the next item");
  renderItem(data.item, data);
}

function flash(name) {
  const btn = document.querySelector(`.class-btn[data-class="${CSS.escape(name)}"]`);
  if (!btn) return;
  btn.classList.add("flash");
  setTimeout(() => btn.classList.remove("flash"), 150);
}

async function labelCurrent(name) {
  const item = page.current;
  if (!item || needName()) return;
  flash(name);
  const {ok, status, data} = await api("/api/label", {id: item.id, label: name, annotator: annotator(),
                                                       round: page.round || null});
  if (ok) {
    page.history.push(item.id);
    showMessage(data.status === "unchanged" ? `${item.id} already had label ${name}` : `${item.id} → ${name}`);
  } else if (status === 409 || status === 404) {
    showMessage(data.error, true);   // someone else labelled it, or the batch changed: move on
  } else {
    showMessage(data.error || `HTTP ${status}`, true);
    return;
  }
  await refreshState();
  await showNext();
}

async function undo() {
  if (needName()) return;
  const id = page.history.pop();
  if (id === undefined) {
    showMessage("nothing to undo", true);
    return;
  }
  const {ok, data} = await api("/api/undo", {id, annotator: annotator()});
  if (!ok) {
    showMessage(data.error, true);
    return;
  }
  showMessage(data.removed ? `removed label ${data.removed} from ${id}` : `${id} had no label`);
  page.skipped = page.skipped.filter((s) => s !== id);
  await refreshState();
  await showNext(id);
}

async function skip() {
  if (!page.current) return;
  page.skipped.push(page.current.id);
  showMessage(`skipped ${page.current.id}`);
  await showNext();
}

async function train() {
  const n = parseInt($("batch-size").value, 10);
  const {ok, data} = await api("/api/query", {n, strategy: $("strategy").value});
  if (!ok) {
    renderTraining({running: false, error: data.error});
    return;
  }
  renderTraining({running: true, message: "training…"});
  startPolling();
}

function startPolling() {
  if (page.polling) return;
  page.polling = setInterval(() => enqueue(async () => {
    const before = page.round;
    const state = await refreshState();
    if (!state.training.running) {
      clearInterval(page.polling);
      page.polling = null;
      if (state.batch.round !== before || !page.current) await showNext();
    }
  }), 700);
}

function onKey(ev) {
  const t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
  if (ev.altKey || ev.metaKey) return;
  if ((ev.key === "z" && ev.ctrlKey) || ev.key === "Backspace") {
    ev.preventDefault();
    enqueue(undo);
    return;
  }
  if (ev.ctrlKey) return;
  if (ev.key === " " || ev.key === "ArrowRight") {
    ev.preventDefault();
    enqueue(skip);
    return;
  }
  const name = page.keyToClass[ev.key.toLowerCase()];
  if (name !== undefined) {
    ev.preventDefault();
    enqueue(() => labelCurrent(name));
  }
}

function init() {
  const params = new URLSearchParams(location.search);
  $("annotator").value = params.get("annotator") || localStorage.getItem("activebatch-annotator") || "";
  $("annotator").addEventListener("change", () => {
    if (annotator()) localStorage.setItem("activebatch-annotator", annotator());
    enqueue(() => showNext());
  });
  $("annotator").addEventListener("keydown", (ev) => { if (ev.key === "Enter") ev.target.blur(); });
  // The model's guess is hidden unless asked for: seeing it first can sway the label.
  $("show-guess").checked = localStorage.getItem("activebatch-show-guess") === "1";
  $("show-guess").addEventListener("change", () => {
    localStorage.setItem("activebatch-show-guess", $("show-guess").checked ? "1" : "0");
    $("show-guess").blur();   // keys label items again
    if (page.current) renderItem(page.current);
  });
  // A clicked button keeps no focus, so Space and Enter never re-press it.
  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest && ev.target.closest("button");
    if (btn) btn.blur();
  });
  document.addEventListener("keydown", onKey);
  $("skip-btn").addEventListener("click", () => enqueue(skip));
  $("undo-btn").addEventListener("click", () => enqueue(undo));
  $("skipped-btn").addEventListener("click", () => enqueue(async () => { page.skipped = []; await showNext(); }));
  $("train-btn").addEventListener("click", () => enqueue(train));
  enqueue(async () => {
    const state = await refreshState();
    if (state.training.running) startPolling();
    await showNext();
  });
}

init();
