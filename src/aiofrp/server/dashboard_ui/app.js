// frps dashboard: plain JavaScript, no build step, no external assets. Reads Go frp's API
// (/api/serverinfo, /api/proxy/{type}, /api/traffic/{name}, /api/clients) every few seconds.
"use strict";
(function () {
  const TYPES = ["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"];
  const PAGE = 100, REFRESH_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const state = { proxies: [], clients: new Map(), sort: "name", asc: true, page: 0, selected: null, filtered: [] };

  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  function bytes(n) {
    n = Number(n) || 0;
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + " " + u[i];
  }
  const clientKey = (user, id) => (!user ? id || "" : !id ? user : user + "." + id);
  async function get(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()).trim());
    return r.json();
  }

  function showError(e) { const el = $("error"); el.hidden = !e; el.textContent = e ? String(e.message || e) : ""; }

  async function refresh() {
    try {
      const [info, clients, ...lists] = await Promise.all(
        [get("/api/serverinfo"), get("/api/clients").catch(() => [])].concat(TYPES.map((t) => get("/api/proxy/" + t))));
      state.clients = new Map(clients.map((c) => [c.key, c]));
      const all = [];
      lists.forEach((l, i) => l.proxies.forEach((p) => {
        p.type = TYPES[i];
        const c = state.clients.get(clientKey(p.user, p.clientID));
        p.client = c ? (c.hostname ? c.hostname + " · " : "") + c.key : clientKey(p.user, p.clientID);
        p.search = [p.name, p.type, p.status, p.client, p.clientVersion,
          p.conf ? JSON.stringify([p.conf.remotePort, p.conf.customDomains, p.conf.subdomain, p.conf.locations]) : ""]
          .join(" ").toLowerCase();
        all.push(p);
      }));
      state.proxies = all;
      renderTotals(info, all);
      renderProxies();
      renderClients(clients);
      if (state.selected) renderDetail(state.selected, false);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      showError(null);
    } catch (e) { showError(e); }
  }

  function renderTotals(info, all) {
    $("version").textContent = "v" + info.version;
    $("t-clients").textContent = info.clientCounts;
    $("t-proxies").textContent = all.filter((p) => p.status === "online").length;
    $("t-conns").textContent = info.curConns;
    $("t-in").textContent = bytes(info.totalTrafficIn);
    $("t-out").textContent = bytes(info.totalTrafficOut);
    const sel = $("type-filter"), have = new Set([...sel.options].map((o) => o.value));
    for (const t of TYPES) if ((info.proxyTypeCount || {})[t] !== undefined && !have.has(t)) sel.add(new Option(t, t));
  }

  function renderProxies() {
    const q = $("search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const type = $("type-filter").value, status = $("status-filter").value;
    const k = state.sort, dir = state.asc ? 1 : -1;
    const rows = state.proxies.filter((p) => (!type || p.type === type) && (!status || p.status === status)
      && q.every((w) => p.search.includes(w)));
    rows.sort((a, b) => (a[k] < b[k] ? -dir : a[k] > b[k] ? dir : a.name < b.name ? -1 : 1));
    state.filtered = rows;
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const slice = rows.slice(state.page * PAGE, state.page * PAGE + PAGE);
    $("proxies").tBodies[0].innerHTML = slice.map((p) =>
      `<tr data-name="${esc(p.name)}"${p.name === state.selected ? ' class="sel"' : ""}>` +
      `<td class="name">${esc(p.name)}</td><td>${esc(p.type)}</td>` +
      `<td><span class="st ${esc(p.status)}">${esc(p.status)}</span></td><td class="opt">${esc(p.client)}</td>` +
      `<td class="num opt">${p.curConns}</td><td class="num">${bytes(p.todayTrafficIn)}</td>` +
      `<td class="num">${bytes(p.todayTrafficOut)}</td></tr>`).join("") ||
      '<tr><td colspan="7" class="muted">no proxy matches</td></tr>';
    $("count").textContent = rows.length === state.proxies.length ? `(${rows.length})` : `(${rows.length} of ${state.proxies.length})`;
    $("page").textContent = `page ${state.page + 1} / ${pages}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    for (const th of $("proxies").tHead.rows[0].cells) {
      th.classList.toggle("sorted", th.dataset.sort === k);
      th.classList.toggle("asc", th.dataset.sort === k && state.asc);
    }
  }

  function renderClients(list) {
    $("client-count").textContent = `(${list.length})`;
    $("clients").tBodies[0].innerHTML = list.map((c) =>
      `<tr><td>${esc(c.key)}</td><td>${esc(c.hostname)}</td><td>${esc(c.version || "")}</td>` +
      `<td class="opt">${esc(c.clientIP || "")}</td>` +
      `<td class="opt">${c.lastConnectedAt ? esc(new Date(c.lastConnectedAt * 1000).toLocaleString()) : ""}</td>` +
      `<td><span class="st ${c.online ? "online" : "offline"}">${c.online ? "online" : "offline"}</span></td></tr>`
    ).join("") || '<tr><td colspan="6" class="muted">no client connected</td></tr>';
  }

  // A small bar chart in SVG: per day, an "in" and an "out" bar; today on the right.
  function chart(tin, tout) {
    const W = 640, H = 220, L = 64, B = 24, T = 8, days = tin.length;
    const max = Math.max(1, ...tin, ...tout), slot = (W - L) / days, bw = Math.max(4, slot * 0.32);
    let s = `<svg class="chart" id="traffic-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="traffic of the last ${days} days">`;
    for (let i = 0; i <= 4; i++) {
      const y = T + (H - T - B) * (1 - i / 4);
      s += `<line x1="${L}" x2="${W}" y1="${y}" y2="${y}"/><text x="${L - 6}" y="${y + 4}" text-anchor="end">${bytes(max * i / 4)}</text>`;
    }
    for (let d = 0; d < days; d++) {
      const idx = days - 1 - d, x = L + d * slot + slot / 2;   // API: index 0 = today
      const hIn = (H - T - B) * tin[idx] / max, hOut = (H - T - B) * tout[idx] / max;
      const date = new Date(Date.now() - idx * 86400000);
      s += `<rect class="in" x="${x - bw}" y="${H - B - hIn}" width="${bw}" height="${hIn}"><title>in ${bytes(tin[idx])}</title></rect>`;
      s += `<rect class="out" x="${x}" y="${H - B - hOut}" width="${bw}" height="${hOut}"><title>out ${bytes(tout[idx])}</title></rect>`;
      s += `<text x="${x}" y="${H - 6}" text-anchor="middle">${idx === 0 ? "today" : (date.getMonth() + 1) + "-" + date.getDate()}</text>`;
    }
    return s + "</svg>";
  }

  async function renderDetail(name, scroll) {
    const p = state.proxies.find((x) => x.name === name);
    if (!p) { closeDetail(); return; }
    state.selected = name;
    $("detail").hidden = false;
    $("detail-name").textContent = name;
    const info = { type: p.type, status: p.status, client: p.client, "client version": p.clientVersion || "",
      connections: p.curConns, "last start": p.lastStartTime, "last close": p.lastCloseTime };
    $("detail-info").innerHTML = Object.entries(info).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
    $("detail-conf").textContent = p.conf ? JSON.stringify(p.conf, null, 2) : "(offline: no configuration)";
    if (scroll) $("detail").scrollIntoView({ behavior: "smooth", block: "start" });
    try {
      const t = await get("/api/traffic/" + encodeURIComponent(name));
      if (state.selected === name) $("detail-chart").innerHTML = chart(t.trafficIn, t.trafficOut);
    } catch (e) { $("detail-chart").textContent = String(e.message || e); }
  }
  function closeDetail() { state.selected = null; $("detail").hidden = true; renderProxies(); }

  let timer = null;
  const rerender = () => { state.page = 0; clearTimeout(timer); timer = setTimeout(renderProxies, 80); };
  $("search").addEventListener("input", rerender);
  $("type-filter").addEventListener("change", rerender);
  $("status-filter").addEventListener("change", rerender);
  $("prev").addEventListener("click", () => { state.page--; renderProxies(); });
  $("next").addEventListener("click", () => { state.page++; renderProxies(); });
  $("detail-close").addEventListener("click", closeDetail);
  $("proxies").tHead.addEventListener("click", (e) => {
    const k = e.target.dataset && e.target.dataset.sort;
    if (!k) return;
    state.asc = state.sort === k ? !state.asc : true;
    state.sort = k;
    renderProxies();
  });
  $("proxies").tBodies[0].addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-name]");
    if (tr) { renderDetail(tr.dataset.name, true); renderProxies(); }
  });
  $("clear-offline").addEventListener("click", async () => {
    const r = await fetch("/api/proxies?status=offline", { method: "DELETE", credentials: "same-origin" });
    if (!r.ok) showError(new Error("clear offline: " + r.status));
    refresh();
  });
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
})();
