// The status page: fetch the JSON endpoints every few seconds and redraw. Every value goes in
// through textContent (dead-letter previews are arbitrary data), never innerHTML; names from the
// data are looked up as own keys only (a consumer may be called "constructor"); every URL is
// relative to the page, never built from the Host header. Every time shown is UTC (the header
// says so): the stored _ts, the dead letters' times, the chart's axis and "updated".
"use strict";

const REFRESH_MS = Number(document.body.dataset.refreshMs) || 2000;
const STATES = ["done", "failed", "running", "queued", "missing"];
let deadPage = 1;
let deadPages = 1;
let chart = null;

async function getJSON(path) {
  const reply = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  return body;
}

function own(object, key) {
  // object[key] only when the object itself has it: never Object.prototype's "constructor"
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const [text, cls] of cells) tr.appendChild(el("td", text, cls));
  return tr;
}

function fill(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows);
}

function utcTime(date) {
  // HH:MM:SS in UTC, like the tables' "YYYY-MM-DD HH:MM:SSZ"
  return `${date.toISOString().slice(11, 19)}Z`;
}

function seconds(ms) {
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}

function showStatus(status, newest) {
  document.getElementById("backlog").textContent = status.queue;
  document.getElementById("pending").textContent = status.pending;
  document.getElementById("dead").textContent = status.dead;
  document.getElementById("consumer-count").textContent = status.consumers.length;
  document.getElementById("redis-url").textContent = status.redis_url;
  document.getElementById("db-url").textContent = status.db_url;
  const p = status.persistence;
  document.getElementById("persistence").textContent = p.survives_restart
    ? "persistence on: queued records survive a restart"
    : "no persistence: a restart of Redis loses queued records";
  fill("consumers", status.consumers.map((c) => {
    const failing = own(status.failing, c.name);
    const state = failing ? `failing (${failing.attempts} attempts): ${failing.error}` : "ok";
    return row([[c.name], [c.pending, "num"], [seconds(c.idle_ms), "num"], [state]]);
  }));
  // Result tables start with a letter; the collector's own (_sweeps, _sweep_points) with "_".
  const tables = Object.entries(status.tables);
  fill("tables", tables.filter(([name]) => !name.startsWith("_")).map(([name, count]) =>
    row([[name], [count, "num"], [own(newest, name) || "–"]])));
  fill("own-tables", tables.filter(([name]) => name.startsWith("_")).map(([name, count]) =>
    row([[name], [count, "num"]])));
}

function showRate(rate) {
  const data = [rate.t, rate.rate];
  if (chart === null) {
    const box = document.getElementById("rate-chart");
    chart = new uPlot({
      width: Math.min(900, box.clientWidth || 900), height: 180,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      series: [{}, { label: "rows/s", stroke: "#1565c0", fill: "rgba(21,101,192,0.12)" }],
      axes: [{}, { label: "rows/s" }],
      legend: { show: false },
    }, data, box);
  } else {
    chart.setData(data);
  }
}

function showSweeps(sweeps) {
  const box = document.getElementById("sweeps");
  if (!sweeps.length) {
    box.replaceChildren(el("p", "none declared", "muted"));
    return;
  }
  box.replaceChildren(...sweeps.map((s) => {
    const div = el("div", null, "sweep");
    div.dataset.sweep = s.sweep;
    const left = el("div");
    // counted as `collector sweep status` counts it
    const shape = `${s.points} points x ${s.replicates} replicates = ${s.total} results`;
    left.appendChild(el("h3", `${s.sweep} → ${s.table}: ${shape}`));
    const bar = el("div", null, "bar");
    const legend = el("div", null, "legend");
    for (const state of STATES) {
      const part = el("span", null, state);
      part.style.width = s.total ? `${(100 * s[state]) / s.total}%` : "0";
      part.title = `${state}: ${s[state]}`;
      bar.appendChild(part);
      const item = el("span");
      item.appendChild(el("i", null, state));
      const count = el("b", s[state]);
      count.dataset.state = state;
      item.append(`${state} `, count);
      legend.appendChild(item);
    }
    left.append(bar, legend);
    if (!s.running_known) {
      const who = s.jobs_from === "dask" ? "Dask" : "RQ";
      left.appendChild(el("p", `queued and running unknown (${who}: ${s.jobs_error})`, "muted"));
    }
    div.appendChild(left);
    if (s.heatmap) {
      const img = el("img");
      img.alt = `heat map of ${s.heatmap}`;
      img.src = `api/sweeps/${encodeURIComponent(s.sweep)}/heatmap.png?v=${s.done}-${s.failed}`;
      div.appendChild(img);
    }
    return div;
  }));
}

function showDead(page) {
  deadPage = page.page;
  deadPages = page.pages;
  document.getElementById("dead-page").textContent = `page ${page.page} of ${page.pages} (${page.total} dead letters)`;
  document.getElementById("dead-newer").disabled = page.page <= 1;
  document.getElementById("dead-older").disabled = page.page >= page.pages;
  fill("dead-letters", page.items.map((d) =>
    row([[d.ts || "–"], [d.reason], [d.table || "–"], [d.preview, "preview"]])));
}

async function refreshDead() {
  showDead(await getJSON(`api/dead?page=${deadPage}`));
}

async function refresh() {
  try {
    const [status, newest, rate, sweeps] = await Promise.all([
      getJSON("api/status"), getJSON("api/tables"), getJSON("api/rate"), getJSON("api/sweeps"),
    ]);
    showStatus(status, newest);
    showRate(rate);
    showSweeps(sweeps);
    await refreshDead();
    document.getElementById("updated").textContent = utcTime(new Date());
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = `refresh failed: ${err.message}`;
  }
}

document.getElementById("dead-newer").addEventListener("click", () => {
  deadPage = Math.max(1, deadPage - 1);
  refreshDead();
});
document.getElementById("dead-older").addEventListener("click", () => {
  deadPage = Math.min(deadPages, deadPage + 1);
  refreshDead();
});

refresh();
setInterval(refresh, REFRESH_MS);
