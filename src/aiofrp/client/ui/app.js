// frpc admin UI: proxies with their status and error (/api/status), the config editor
// (/api/config, /api/verify, /api/reload) and the store (/api/store/*). No build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
let proxies = [];
let savedText = "";

async function call(method, path, body) {
  const resp = await fetch(path, { method, body, credentials: "same-origin", cache: "no-store" });
  const text = await resp.text();
  return { ok: resp.ok, status: resp.status, text };
}

function cell(row, label, value, cls) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.textContent = value || "";
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function render() {
  const q = $("filter").value.trim().toLowerCase();
  const rows = $("proxy-rows");
  rows.textContent = "";
  const shown = proxies.filter((p) => !q || [p.name, p.type, p.status].some((v) => v.toLowerCase().includes(q)));
  for (const p of shown) {
    const tr = document.createElement("tr");
    tr.dataset.name = p.name;
    const nameCell = cell(tr, "Name", p.name, "name");
    if (p.source === "store") {
      const src = document.createElement("span");
      src.className = "src";
      src.textContent = "store";
      src.title = "added through the store API (store.path)";
      nameCell.appendChild(src);
    }
    cell(tr, "Type", p.type);
    const st = cell(tr, "Status", "");
    const badge = document.createElement("span");
    badge.className = "status " + p.status.replace(/\s+/g, "-");
    badge.textContent = p.status;
    st.appendChild(badge);
    cell(tr, "Local", p.local_addr);
    cell(tr, "Remote", p.remote_addr);
    cell(tr, "Plugin", p.plugin);
    cell(tr, "Error", p.err, "err");
    rows.appendChild(tr);
  }
  const running = proxies.filter((p) => p.status === "running").length;
  $("summary").textContent = `${proxies.length} proxies, ${running} running` +
    (shown.length !== proxies.length ? `, ${shown.length} shown` : "");
  $("empty").hidden = proxies.length !== 0;
}

async function loadStatus() {
  try {
    const r = await call("GET", "/api/status");
    if (!r.ok) throw new Error(`/api/status: ${r.status} ${r.text}`);
    const data = JSON.parse(r.text);
    proxies = Object.values(data).flat().sort((a, b) => a.name.localeCompare(b.name));
    $("load-error").hidden = true;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    render();
  } catch (e) {
    $("load-error").textContent = String(e.message || e);
    $("load-error").hidden = false;
  }
}

async function loadStore() {
  const list = $("store-list");
  const [p, v] = await Promise.all([call("GET", "/api/store/proxies"), call("GET", "/api/store/visitors")]);
  if (!p.ok) { $("store").hidden = true; return; }  // no store.path: the routes do not exist
  $("store").hidden = false;
  list.textContent = "";
  const entries = JSON.parse(p.text).proxies.map((e) => ["proxies", e])
    .concat(v.ok ? JSON.parse(v.text).visitors.map((e) => ["visitors", e]) : []);
  for (const [kind, e] of entries) {
    const li = document.createElement("li");
    li.textContent = `${e.name} (${e.type}${kind === "visitors" ? " visitor" : ""}) `;
    const del = document.createElement("button");
    del.textContent = "Delete";
    del.onclick = async () => {
      if (!confirm(`Delete ${e.name} from the store?`)) return;
      const r = await call("DELETE", `/api/store/${kind}/${encodeURIComponent(e.name)}`);
      if (!r.ok) alert(r.text);
      await Promise.all([loadStatus(), loadStore()]);
    };
    li.appendChild(del);
    list.appendChild(li);
  }
  if (!entries.length) list.innerHTML = '<li class="muted">empty</li>';
}

function showConfigResult(error, ok) {
  $("config-error").hidden = !error;
  $("config-error").textContent = error || "";
  $("config-ok").hidden = !ok;
  $("config-ok").textContent = ok || "";
}

async function loadConfig() {
  const r = await call("GET", "/api/config");
  if (!r.ok) { showConfigResult(r.text, ""); return; }
  savedText = r.text;
  $("editor").value = r.text;
  showConfigResult("", "");
}

// Put the cursor on the key an error names ("FILE: proxies[1].localPort: reason"): the N-th
// [[proxies]] table, then the key's last segment (TOML; other formats: its first mention).
function selectErrorKey(error) {
  const m = /: ((?:[A-Za-z_]\w*(?:\[\d+\])?\.)*[A-Za-z_]\w*(?:\[\d+\])?): /.exec(error);
  if (!m) return;
  const ed = $("editor");
  const text = ed.value;
  let from = 0;
  const table = /^(proxies|visitors)\[(\d+)\]/.exec(m[1]);
  if (table) {
    const re = new RegExp(`^\\s*\\[\\[\\s*${table[1]}\\s*\\]\\]`, "gm");
    for (let i = 0; i <= Number(table[2]); i++) {
      const hit = re.exec(text);
      if (!hit) { from = 0; break; }
      from = hit.index;
    }
  }
  const key = m[1].split(".").pop().replace(/\[\d+\]$/, "");
  const at = text.indexOf(key, from);
  if (at < 0) return;
  ed.focus();
  ed.setSelectionRange(at, at + key.length);
}

async function validate() {
  const r = await call("POST", "/api/verify?strictConfig=true", $("editor").value);
  if (!r.ok) { showConfigResult(r.text || `error ${r.status}`, ""); selectErrorKey(r.text); return false; }
  showConfigResult("", "The configuration is valid.");
  return true;
}

async function saveAndReload() {
  const btn = $("save");
  btn.disabled = true;
  try {
    if (!(await validate())) return;
    let r = await call("PUT", "/api/config", $("editor").value);
    if (!r.ok) { showConfigResult(`saving failed: ${r.text}`, ""); return; }
    savedText = $("editor").value;
    r = await call("GET", "/api/reload?strictConfig=true");
    if (!r.ok) { showConfigResult(`reload failed, nothing changed: ${r.text}`, ""); return; }
    showConfigResult("", "Saved and reloaded.");
    await loadStatus();
  } finally {
    btn.disabled = false;
  }
}

function route() {
  const config = location.hash === "#config";
  $("proxies-view").hidden = config;
  $("config-view").hidden = !config;
  $("nav-proxies").classList.toggle("active", !config);
  $("nav-config").classList.toggle("active", config);
  if (config && !savedText) loadConfig();
}

$("filter").addEventListener("input", render);
$("refresh").addEventListener("click", () => { loadStatus(); loadStore(); });
$("validate").addEventListener("click", validate);
$("save").addEventListener("click", saveAndReload);
$("revert").addEventListener("click", loadConfig);
window.addEventListener("hashchange", route);
route();
loadStatus();
loadStore();
setInterval(() => { if (!document.hidden) loadStatus(); }, 3000);
