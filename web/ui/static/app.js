// Ballast UI: plain browser JavaScript over the public HTTP APIs.
"use strict";

const $ = (sel) => document.querySelector(sel);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fill(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}

function metricName(m) {
  const name = m.__name__ || "";
  const labels = Object.entries(m).filter(([k]) => k !== "__name__")
    .map(([k, v]) => `${k}="${v}"`).join(", ");
  return labels ? `${name}{${labels}}` : name || "{}";
}

async function promGet(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await resp.json();
  if (body.status !== "success") throw new Error(`${body.errorType}: ${body.error}`);
  return body.data;
}

async function runQuery(ev) {
  if (ev) ev.preventDefault();
  const err = $("#query-error");
  err.hidden = true;
  try {
    const form = new URLSearchParams({ query: $("#query").value });
    const resp = await fetch("/api/v1/query", { method: "POST", body: form });
    const body = await resp.json();
    if (body.status !== "success") throw new Error(`${body.errorType}: ${body.error}`);
    const d = body.data;
    let rows = [];
    if (d.resultType === "vector") {
      rows = d.result.map((s) => [cell(metricName(s.metric), "mono"), cell(s.value[1], "mono")]);
    } else if (d.resultType === "scalar" || d.resultType === "string") {
      rows = [[cell(d.resultType), cell(String(d.result[1]), "mono")]];
    } else {
      rows = d.result.map((s) => [cell(metricName(s.metric), "mono"), cell(`${s.values.length} points`)]);
    }
    fill($("#query-result"), rows);
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  }
}

async function loadStatus() {
  try {
    const bi = await promGet("/api/v1/status/buildinfo");
    $("#version").textContent = `version ${bi.version} (${bi.goVersion})`;
  } catch (e) { /* shown by the ready badge */ }
  const ready = await fetch("/-/ready").then((r) => r.ok).catch(() => false);
  const badge = $("#ready");
  badge.textContent = ready ? "ready" : "not ready";
  badge.className = "badge " + (ready ? "ok" : "down");
  try {
    const t = await promGet("/api/v1/targets?state=active");
    fill($("#targets"), t.activeTargets.map((a) => [
      cell(a.labels.job), cell(a.scrapeUrl, "mono"),
      cell(a.health, "health-" + a.health), cell(a.lastScrape ? new Date(a.lastScrape).toLocaleTimeString() : ""),
      cell(a.lastError || ""),
    ]));
  } catch (e) { /* targets need a ready server */ }
}

function link(text, href) {
  const td = document.createElement("td");
  if (href && /^https?:\/\/|^\//.test(href)) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.append(a);
  } else {
    td.textContent = text;
  }
  return td;
}

async function loadAlerts() {
  try {
    const d = await promGet("/api/v1/alerts");
    const order = { firing: 0, pending: 1 };
    const alerts = d.alerts.sort((a, b) => (order[a.state] ?? 2) - (order[b.state] ?? 2));
    fill($("#alerts"), alerts.map((a) => {
      const { alertname, severity, ...rest } = a.labels;
      return [
        link(alertname, a.annotations.runbook_url), cell(a.state, "alert-" + a.state), cell(severity || ""),
        cell(Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(", "), "mono"),
        cell(a.annotations.summary || ""), cell(a.activeAt ? new Date(a.activeAt).toLocaleString() : ""),
      ];
    }));
    $("#alerts-none").hidden = alerts.length > 0;
  } catch (e) { /* alerts need a ready server */ }
}

async function v1(path, token) {
  const resp = await fetch(path, {
    headers: { Accept: "application/json", "X-Auth-Token": token, "OpenStack-API-Version": "infra-optim 1.7" },
  });
  const body = await resp.json();
  if (!resp.ok) {
    let msg = body.error_message || resp.statusText;
    try { msg = JSON.parse(msg).faultstring; } catch (e) { /* plain text */ }
    throw new Error(`${resp.status}: ${msg}`);
  }
  return body;
}

async function loadOptimization(ev) {
  ev.preventDefault();
  const token = $("#token").value;
  const err = $("#v1-error");
  err.hidden = true;
  try {
    const audits = await v1("/v1/audits/detail?sort_key=created_at&sort_dir=desc&limit=50", token);
    fill($("#audits"), audits.audits.map((a) => [
      cell(a.name), cell(a.audit_type), cell(a.state), cell(a.goal_name), cell(a.strategy_name || ""),
    ]));
    const plans = await v1("/v1/action_plans/detail?sort_key=created_at&sort_dir=desc&limit=50", token);
    fill($("#plans"), plans.action_plans.map((p) => [
      cell(p.uuid, "mono"), cell(p.state), cell(p.strategy_name || ""),
      cell((p.global_efficacy || []).map((g) => `${g.name}: ${Number(g.value).toFixed(1)}${g.unit || ""}`).join(", ")),
    ]));
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  }
}

$("#query-form").addEventListener("submit", runQuery);
$("#token-form").addEventListener("submit", loadOptimization);
// Prometheus's expression links (/graph?g0.expr=…, an alert's source).
const linked = new URLSearchParams(window.location.search).get("g0.expr");
if (linked) $("#query").value = linked;
loadStatus();
loadAlerts();
runQuery();
setInterval(loadStatus, 15000);
setInterval(loadAlerts, 15000);
