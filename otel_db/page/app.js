// The otel_db web page: one script, no dependencies, no build step.
//
// Views by path: / (trace search and questions in words), /trace/ID (the
// waterfall, span details, root cause, logs, similar traces, explanation),
// /dead-letters and /metrics. A search is in the URL's query string, so the
// back button and a pasted link work. Every value from the database goes
// through esc() or textContent: span names and attributes are untrusted.
"use strict";

const TOKEN_KEY = "otel_db.token";
const LOOKBACKS = ["15m", "1h", "6h", "1d", "2d", "7d", "30d"];
const AGGREGATES = ["avg", "min", "max", "sum", "count", "rate", "p50", "p90", "p99"];
// Service colours, told apart by hue; a trace's services take them in order of appearance.
const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#843c39"];

const $ = (selector, root = document) => root.querySelector(selector);
const esc = (value) => String(value ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// GET (or POST) an endpoint of the query API; its `data`, or an ApiError with the server's message.
async function api(path, { method = "GET", token = null } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token || sessionStorage.getItem(TOKEN_KEY);
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch(path, { method, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  if (response.status === 401 && !token) askForToken();
  if (!response.ok || body === null) {
    const message = body?.errors?.[0]?.msg || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body.data;
}

function askForToken() {
  const form = $("#token");
  form.hidden = false;
  form.onsubmit = (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, form.elements.token.value.trim());
    location.reload();
  };
}

function showProblem(error) {
  const box = $("#problem");
  box.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
  box.hidden = false;
  document.body.dataset.state = "error";
}

// ------------------------------------------------------------------ formatting

function duration(microseconds) {
  if (microseconds >= 1e6) return `${(microseconds / 1e6).toFixed(microseconds >= 1e7 ? 1 : 2)} s`;
  if (microseconds >= 1e3) return `${(microseconds / 1e3).toFixed(microseconds >= 1e4 ? 1 : 2)} ms`;
  return `${Math.round(microseconds)} µs`;
}

const milliseconds = (ms) => duration(ms * 1000);

const counted = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

// UTC to the millisecond, as the command line prints it.
function when(value) {
  const date = typeof value === "number" ? new Date(value / 1000) : new Date(value);
  return date.toISOString().replace("T", " ").replace("Z", "");
}

function tagValue(tag) {
  return typeof tag.value === "object" ? JSON.stringify(tag.value) : String(tag.value);
}

function keyValueTable(pairs, empty = "none") {
  if (!pairs.length) return `<p class="muted">${esc(empty)}</p>`;
  const rows = pairs.map(([key, value]) => `<tr><th>${esc(key)}</th><td>${esc(value)}</td></tr>`);
  return `<table class="kv">${rows.join("")}</table>`;
}

function table(headers, rows, empty) {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join("");
  return `<table class="list"><thead><tr>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

const traceLink = (traceId, text) => `<a href="/trace/${esc(traceId)}">${esc(text)}</a>`;

// The value attribute keeps a name exactly (an option's text is sent with its white space collapsed).
function options(values, selected, blank) {
  const first = blank === undefined ? "" : `<option value="">${esc(blank)}</option>`;
  return first + values.map((v) =>
    `<option value="${esc(v)}"${v === selected ? " selected" : ""}>${esc(v)}</option>`).join("");
}

// "http.response.status_code=503 error=true user=\"a b\"" as {key: value}.
function parseTags(text) {
  const found = {};
  for (const match of text.matchAll(/([^\s=]+)=("([^"]*)"|\S*)/g)) {
    found[match[1]] = match[3] ?? match[2];
  }
  return found;
}

// ------------------------------------------------------------------ search

async function showSearch() {
  const params = new URLSearchParams(location.search);
  const view = $("#view");
  view.innerHTML = `
    <section class="panel">
      <form id="search" class="search" action="/" method="get">
        <label>Service <select name="service"><option value="">all services</option></select></label>
        <label>Operation <select name="operation"><option value="">all operations</option></select></label>
        <label class="wide">Attributes <input name="tags" placeholder="http.response.status_code=503 error=true"
               value="${esc(params.get("tags") || "")}" spellcheck="false"></label>
        <label>Min duration <input name="minDuration" placeholder="100ms" size="7"
               value="${esc(params.get("minDuration") || "")}"></label>
        <label>Max duration <input name="maxDuration" placeholder="2s" size="7"
               value="${esc(params.get("maxDuration") || "")}"></label>
        <label>Last <select name="lookback">${options(LOOKBACKS, params.get("lookback") || "1h")}</select></label>
        <label>Limit <input name="limit" type="number" min="1" max="1000" size="4"
               value="${esc(params.get("limit") || "20")}"></label>
        <button>Find traces</button>
      </form>
      <form id="ask" class="ask" action="/" method="get">
        <input name="q" placeholder="Ask in words: why was the card declined?" value="${esc(params.get("q") || "")}">
        <input type="hidden" name="lookback" value="${esc(params.get("lookback") || "1d")}">
        <button>Ask</button>
      </form>
    </section>
    <section id="results" class="panel"></section>`;
  const form = $("#search");
  form.onsubmit = () => {
    // Empty fields stay out of the URL.
    for (const field of form.elements) if (field.name && !field.value) field.disabled = true;
  };
  const services = await api("/api/services");
  const serviceSelect = form.elements.service;
  serviceSelect.innerHTML = options(services, params.get("service") || "", "all services");
  let asked = 0;
  const loadOperations = async () => {
    const service = serviceSelect.value;
    const mine = ++asked;  // a slower answer for a service chosen before is dropped
    const names = service ? await api(`/api/services/${encodeURIComponent(service)}/operations`) : [];
    if (mine === asked) form.elements.operation.innerHTML = options(names, params.get("operation") || "", "all operations");
  };
  serviceSelect.onchange = () => loadOperations().catch(showProblem);
  await loadOperations();

  if (params.get("q")) await showAnswers(params);
  else if ([...params.keys()].length) await showFound(params);
  else $("#results").innerHTML = `<p class="muted">Choose a service, or search all of them.</p>`;
  document.body.dataset.state = "ready";
}

async function showFound(params) {
  const query = new URLSearchParams();
  for (const name of ["service", "operation", "minDuration", "maxDuration", "lookback", "limit"]) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  const tags = parseTags(params.get("tags") || "");
  if (Object.keys(tags).length) query.set("tags", JSON.stringify(tags));
  if (!query.get("limit")) query.set("limit", "20");
  const found = await api(`/api/otel/traces?${query}`);
  const rows = found.map((t) => `
    <tr class="${t.error_count ? "failed" : ""}">
      <td class="time">${esc(when(t.start_time))}</td>
      <td>${traceLink(t.trace_id, `${t.root_service ?? "?"}: ${t.root_name ?? "(root span not stored)"}`)}</td>
      <td class="number">${esc(milliseconds(t.duration_ms))}</td>
      <td class="number">${esc(t.span_count)}</td>
      <td class="number">${t.error_count ? `<span class="error-mark">${esc(t.error_count)}</span>` : "0"}</td>
      <td>${esc(t.services.join(", "))}</td>
    </tr>`);
  $("#results").innerHTML = `<h2>${esc(counted(found.length, "trace"))}, newest first</h2>` +
    table(["Start (UTC)", "Trace", "Duration", "Spans", "Errors", "Services"], rows,
          "No trace matches in this window. Widen the window or drop a condition.");
}

async function showAnswers(params) {
  const query = new URLSearchParams({ q: params.get("q"), k: "20" });
  if (params.get("lookback")) query.set("lookback", params.get("lookback"));
  const found = await api(`/api/otel/similar?${query}`);
  const rows = found.map((t) => `
    <tr class="${t.status === "ERROR" ? "failed" : ""}">
      <td class="number">${esc(t.similarity.toFixed(2))}</td>
      <td>${traceLink(t.trace_id, t.trace_id)}</td>
      <td>${esc(t.service ?? "")}</td>
      <td>${esc(t.name)}</td>
      <td>${esc(t.status_message ?? "")}</td>
      <td class="number">${esc(milliseconds(t.duration_ms))}</td>
      <td class="time">${esc(when(t.start_time))}</td>
    </tr>`);
  $("#results").innerHTML = `<h2>Traces closest to “${esc(params.get("q"))}”</h2>` +
    table(["Similarity", "Trace", "Service", "Best span", "Status message", "Duration", "Start (UTC)"], rows,
          "No trace is close enough. Spans are searchable once embedded; try other words or a longer window.");
}

// ------------------------------------------------------------------ trace

// The spans depth-first, children by start time; a span whose parent is not stored starts a tree of its
// own, and so does one only reachable through a cycle of parents (bad data, shown rather than lost).
function spanTree(spans) {
  const byId = new Map(spans.map((s) => [s.spanID, s]));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.references.find((r) => r.refType === "CHILD_OF" && byId.has(r.spanID));
    if (parent) {
      if (!children.has(parent.spanID)) children.set(parent.spanID, []);
      children.get(parent.spanID).push(span);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a, b) => a.startTime - b.startTime;
  const ordered = [];
  const placed = new Set();
  const walk = (root) => {
    const stack = [[root, 0]];
    while (stack.length) {
      const [span, depth] = stack.pop();
      if (placed.has(span)) continue;
      placed.add(span);
      const below = (children.get(span.spanID) || []).filter((c) => !placed.has(c)).sort(byStart);
      ordered.push({ span, depth, hasChildren: below.length > 0 });
      for (let i = below.length - 1; i >= 0; i--) stack.push([below[i], depth + 1]);
    }
  };
  roots.sort(byStart).forEach(walk);
  spans.filter((s) => !placed.has(s)).sort(byStart).forEach(walk);
  return ordered;
}

// The first start and the last end, in microseconds (a loop: spreading 100,000 spans overflows the stack).
function extent(spans) {
  let start = Infinity;
  let end = -Infinity;
  for (const span of spans) {
    start = Math.min(start, span.startTime);
    end = Math.max(end, span.startTime + span.duration);
  }
  return [start, end];
}

const isError = (span) => span.tags.some((t) => t.key === "error" && t.value === true);

function axis(total) {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    `<span class="tick" style="left:${f * 100}%">${esc(duration(total * f))}</span>`);
  return `<div class="row axis"><div class="name">Service and operation</div><div class="lane">${ticks.join("")}</div></div>`;
}

function waterfall(trace, ordered, colours, causes, [start, end]) {
  const total = Math.max(end - start, 1);
  const rows = ordered.map(({ span, depth, hasChildren }, i) => {
    const service = trace.processes[span.processID]?.serviceName ?? "";
    const colour = colours.get(service);
    const left = ((span.startTime - start) / total) * 100;
    const width = Math.max((span.duration / total) * 100, 0.2);
    const failed = isError(span);
    const cause = causes.has(span.spanID);
    const classes = ["row", "span", failed ? "error" : "", cause ? "root-cause" : ""].join(" ");
    const label = left + width > 70 ? "before" : "after";
    return `<div class="${classes}" data-i="${i}" data-depth="${depth}" data-span-id="${esc(span.spanID)}">` +
      `<div class="name" style="padding-left:${0.4 + depth * 1.1}em">` +
      `<span class="toggle">${hasChildren ? "▾" : ""}</span>` +
      `<span class="service" style="border-left-color:${colour}">${esc(service)}</span> ` +
      `<span class="operation">${esc(span.operationName)}</span>` +
      (failed ? ` <span class="error-mark" title="status ERROR">✗ error</span>` : "") +
      (cause ? ` <span class="cause-mark" title="root cause">root cause</span>` : "") +
      `</div><div class="lane"><div class="bar" style="left:${left}%;width:${width}%;background:${colour}"></div>` +
      `<span class="duration ${label}" style="${label === "after" ? `left:${left + width}%` : `right:${100 - left}%`}">` +
      `${esc(duration(span.duration))}</span></div></div>`;
  });
  return axis(total) + rows.join("");
}

function spanDetail(trace, span, start) {
  const process = trace.processes[span.processID] || { serviceName: "", tags: [] };
  const parent = span.references.find((r) => r.refType === "CHILD_OF");
  const links = span.references.filter((r) => r.refType === "FOLLOWS_FROM");
  const facts = [
    ["span id", span.spanID],
    ["parent span id", parent ? parent.spanID : "none (a root)"],
    ["service", process.serviceName],
    ["starts after", duration(span.startTime - start)],
    ["duration", duration(span.duration)],
  ];
  const events = span.logs.map((log) => {
    const fields = log.fields.map((f) => `${f.key}=${tagValue(f)}`).join("  ");
    return `<li><span class="muted">+${esc(duration(log.timestamp - start))}</span> ${esc(fields)}</li>`;
  });
  const linkItems = links.map((l) =>
    `<li>${traceLink(l.traceID, l.traceID)} span ${esc(l.spanID)}</li>`);
  return `<div class="detail">
      <h3>${esc(span.operationName)}</h3>
      ${keyValueTable(facts)}
      <h4>Attributes</h4>${keyValueTable(span.tags.map((t) => [t.key, tagValue(t)]))}
      <h4>Resource</h4>${keyValueTable(process.tags.map((t) => [t.key, tagValue(t)]))}
      <h4>Events</h4>${events.length ? `<ul class="events">${events.join("")}</ul>` : `<p class="muted">none</p>`}
      <h4>Links</h4>${linkItems.length ? `<ul>${linkItems.join("")}</ul>` : `<p class="muted">none</p>`}
    </div>`;
}

// Hides the rows under collapsed spans: depth-first order puts a span's subtree right after it.
function applyCollapsed(rows) {
  let hiddenBelow = Infinity;
  for (const row of rows) {
    const depth = Number(row.dataset.depth);
    if (depth <= hiddenBelow) hiddenBelow = Infinity;
    row.hidden = depth > hiddenBelow;
    if (!row.hidden && row.classList.contains("collapsed")) hiddenBelow = depth;
  }
}

async function showTrace(traceId) {
  const view = $("#view");
  view.innerHTML = `<p class="muted">Loading trace ${esc(traceId)}…</p>`;
  const base = `/api/otel/traces/${traceId}`;
  // The root cause marks rows of the waterfall, so it comes with the trace; the rest waits until it is drawn.
  const rootCause = api(`${base}/root-cause`);
  rootCause.catch(() => {});
  let trace;
  try {
    [trace] = await api(`/api/traces/${traceId}`);
  } catch (error) {
    if (error.status === 404) {
      view.innerHTML = `<section class="panel"><h2>Trace ${esc(traceId)} is not stored</h2>
        <p>It may not be flushed yet, or it is older than the retention.</p></section>`;
      document.body.dataset.state = "ready";
      return;
    }
    throw error;
  }
  const causes = await rootCause.catch(() => []);
  const ordered = spanTree(trace.spans);
  const colours = new Map();
  for (const { span } of ordered) {
    const service = trace.processes[span.processID]?.serviceName ?? "";
    if (!colours.has(service)) colours.set(service, PALETTE[colours.size % PALETTE.length]);
  }
  const [start, end] = extent(trace.spans);
  const errors = trace.spans.filter(isError).length;
  const root = ordered[0].span;
  const rootService = trace.processes[root.processID]?.serviceName ?? "";
  const legend = [...colours].map(([service, colour]) =>
    `<span class="legend" style="border-left-color:${colour}">${esc(service)}</span>`).join("");
  view.innerHTML = `
    <section class="panel trace-head">
      <h2>${esc(rootService)}: ${esc(root.operationName)}</h2>
      <p><span class="trace-id">${esc(trace.traceID)}</span> · started ${esc(when(start))} UTC ·
         ${esc(duration(end - start))} · ${esc(counted(trace.spans.length, "span"))} ·
         ${esc(counted(colours.size, "service"))} ·
         ${errors ? `<span class="error-mark">${esc(counted(errors, "error"))}</span>` : "no errors"}</p>
      <p>${legend}</p>
    </section>
    <section class="panel" id="root-cause"></section>
    <section class="panel"><h2>Waterfall</h2><div id="waterfall" class="waterfall">
      ${waterfall(trace, ordered, colours, new Set(causes.map((c) => c.span_id)), [start, end])}</div></section>
    <section class="panel" id="logs"><h2>Logs</h2><p class="muted">Loading…</p></section>
    <section class="panel" id="similar"><h2>Similar traces</h2><p class="muted">Loading…</p></section>
    <section class="panel" id="explain"><h2>What is different about this trace</h2>
      <p><button id="explain-button">Compare with its closest healthy traces</button>
      <span class="muted">what differs from them: failures, spans only here or missing, slower steps, attributes</span></p>
    </section>`;
  showRootCause(causes);
  const box = $("#waterfall");
  const rows = [...box.querySelectorAll(".span")];
  box.onclick = (event) => {
    const row = event.target.closest(".span");
    if (!row) return;
    if (event.target.classList.contains("toggle") && event.target.textContent) {
      row.classList.toggle("collapsed");
      event.target.textContent = row.classList.contains("collapsed") ? "▸" : "▾";
      applyCollapsed(rows);
      const open = box.querySelector(".detail");
      if (open?.previousElementSibling.hidden) open.remove();
      return;
    }
    const open = box.querySelector(".detail");
    const reopening = open && open.previousElementSibling === row;
    if (open) open.remove();
    if (!reopening) row.insertAdjacentHTML("afterend", spanDetail(trace, ordered[row.dataset.i].span, start));
  };
  $("#explain-button").onclick = () => {
    $("#explain").innerHTML = `<h2>What is different about this trace</h2><p class="muted">Comparing…</p>`;
    api(`${base}/explain`).then(showExplanation, (e) => showAsideProblem("#explain", "What is different", e));
  };
  // Rendered once the browser has laid out and painted the waterfall.
  await new Promise((painted) => requestAnimationFrame(() => setTimeout(painted, 0)));
  performance.mark("otel-trace-rendered");
  await Promise.all([
    api(`${base}/logs`).then(showLogs, (e) => showAsideProblem("#logs", "Logs", e)),
    api(`${base}/similar`).then(showSimilar, (e) => showAsideProblem("#similar", "Similar traces", e)),
  ]);
  document.body.dataset.state = "ready";
}

function showAsideProblem(selector, title, error) {
  $(selector).innerHTML = `<h2>${esc(title)}</h2><p class="muted">Not available: ${esc(error.message)}</p>`;
}

function showRootCause(causes) {
  const box = $("#root-cause");
  if (!causes.length) {
    box.hidden = true;
    return;
  }
  const items = causes.map((c) => `
    <li><button class="link" data-span-id="${esc(c.span_id)}">${esc(c.service ?? "")}: ${esc(c.name)}</button>
      ${c.exception_type ? `<strong>${esc(c.exception_type)}</strong>` : ""}
      ${esc(c.exception_message ?? c.status_message ?? "")}
      <span class="muted">(${esc(c.reason)})</span></li>`);
  box.innerHTML = `<h2>Where the failure starts</h2><ol class="causes">${items.join("")}</ol>`;
  box.onclick = revealClickedSpan;
}

// A click on a button that names a span (data-span-id) shows that span in the waterfall.
function revealClickedSpan(event) {
  const spanId = event.target.dataset?.spanId;
  if (spanId) revealSpan(spanId);
}

// Scrolls to a span's row, unfolding every folded subtree, and shows its details.
function revealSpan(spanId) {
  const rows = [...document.querySelectorAll("#waterfall .span")];
  const row = rows.find((r) => r.dataset.spanId === spanId);
  if (!row) return;
  for (const r of rows) r.classList.remove("collapsed");
  for (const t of document.querySelectorAll("#waterfall .toggle")) if (t.textContent) t.textContent = "▾";
  applyCollapsed(rows);
  row.scrollIntoView({ block: "center" });
  if (row.nextElementSibling?.classList.contains("detail")) return;
  row.querySelector(".operation").click();
}

function showLogs(logs) {
  const rows = logs.map((l) => `
    <tr class="${(l.severity_number ?? 0) >= 17 ? "failed" : ""}">
      <td class="time">${esc(when(l.time))}</td><td>${esc(l.severity_text ?? l.severity_number ?? "")}</td>
      <td>${esc(l.service ?? "")}</td><td class="body">${esc(l.body ?? "")}</td>
      <td>${l.span_id ? `<button class="link" data-span-id="${esc(l.span_id)}">${esc(l.span_id)}</button>` : ""}</td>
    </tr>`);
  const box = $("#logs");
  box.innerHTML = `<h2>Logs</h2>` +
    table(["Time (UTC)", "Severity", "Service", "Body", "Span"], rows, "No log record carries this trace's id.");
  box.onclick = revealClickedSpan;
}

function showSimilar(found) {
  const rows = found.map((t) => `
    <tr><td class="number">${esc(t.similarity.toFixed(2))}</td><td>${traceLink(t.trace_id, t.trace_id)}</td>
      <td>${esc(t.service ?? "")}</td><td>${esc(t.name)}</td><td>${esc(t.status_message ?? "")}</td></tr>`);
  $("#similar").innerHTML = `<h2>Similar traces</h2>` +
    table(["Similarity", "Trace", "Service", "Closest span", "Status message"], rows,
          "None close enough yet (new spans are searchable once embedded).");
}

function showExplanation(found) {
  const items = found.map((e) =>
    `<li>${esc(e.description)} <span class="muted">(in ${esc(e.holds_in)} of ${esc(e.compared)} comparisons)</span></li>`);
  $("#explain").innerHTML = `<h2>What is different about this trace</h2>` + (items.length
    ? `<ol>${items.join("")}</ol>`
    : `<p class="muted">Nothing stands out against its closest healthy neighbours.</p>`);
}

// ------------------------------------------------------------------ dead letters

async function showDeadLetters() {
  const params = new URLSearchParams(location.search);
  const lookbackText = params.get("lookback") || "7d";
  const view = $("#view");
  view.innerHTML = `
    <section class="panel toolbar">
      <form class="search" action="/dead-letters" method="get">
        <label>Last <select name="lookback">${options(LOOKBACKS, lookbackText)}</select></label>
        <button>Show</button>
      </form>
      <form id="retry" class="retry">
        <label>Admin token <input name="token" type="password" autocomplete="off"></label>
        <button>Retry pending dead letters</button>
        <span id="retry-result" role="status"></span>
      </form>
    </section>
    <section class="panel" id="letters"></section>`;
  $("#retry").onsubmit = async (event) => {
    event.preventDefault();
    const result = $("#retry-result");
    try {
      // An empty field still sends a token ("-"), so that the answer is 401, not the page's own token's.
      const done = await api("/api/otel/dead-letters/retry",
                             { method: "POST", token: event.target.elements.token.value.trim() || "-" });
      result.textContent = `Moved ${done.moved}; ${done.pending} still pending.`;
      await listDeadLetters(lookbackText);
    } catch (error) {
      result.textContent = error.status === 401 ? "That is not the admin token." : error.message;
    }
  };
  await listDeadLetters(lookbackText);
  document.body.dataset.state = "ready";
}

async function listDeadLetters(lookbackText) {
  const reasons = await api(`/api/otel/dead-letters?lookback=${encodeURIComponent(lookbackText)}`);
  const rows = reasons.map((r) => {
    const samples = r.sample_letters.map((s) => `
      <div class="letter"><p>#${esc(s.id)} · ${esc(when(s.created_at))} · ${esc(s.source)} ·
        retried ${esc(s.retry_count)}× ${s.processed ? "· moved" : ""}</p>
        <p class="error-text">${esc(s.error_message)}</p><pre>${esc(s.raw_data)}</pre></div>`).join("");
    return `<tr class="reason">
      <td>${esc(r.telemetry_type)}</td><td>${esc(r.reason)}</td>
      <td class="number">${esc(r.letters)}</td><td class="number">${esc(r.pending)}</td>
      <td class="time">${esc(when(r.first_seen))}</td><td class="time">${esc(when(r.last_seen))}</td></tr>
      <tr class="samples"><td colspan="6"><details><summary>${esc(r.sample_letters.length)} newest</summary>
        ${samples}</details></td></tr>`;
  });
  $("#letters").innerHTML = `<h2>Dead letters by reason</h2>` +
    table(["Kind", "Reason", "Letters", "Pending", "First (UTC)", "Last (UTC)"], rows,
          "No row was rejected in this window.");
}

// ------------------------------------------------------------------ metrics

const SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const BUCKETS = ["1s", "5s", "10s", "30s", "1m", "5m", "10m", "30m", "1h", "3h", "6h", "12h", "24h"];
const seconds = (text) => Number(text.slice(0, -1)) * SECONDS[text.slice(-1)];

// About 120 points in the window.
const bucketFor = (lookbackText) =>
  BUCKETS.find((b) => seconds(b) >= seconds(lookbackText) / 120) || BUCKETS[BUCKETS.length - 1];

async function showMetrics() {
  const params = new URLSearchParams(location.search);
  const lookbackText = params.get("lookback") || "1h";
  const view = $("#view");
  view.innerHTML = `
    <section class="panel">
      <form id="metric" class="search" action="/metrics" method="get">
        <label>Metric <select name="name"></select></label>
        <label>Aggregate <select name="agg">${options(AGGREGATES, params.get("agg") || "avg")}</select></label>
        <label>Last <select name="lookback">${options(LOOKBACKS, lookbackText)}</select></label>
        <label class="wide">Labels <input name="labels" placeholder='{"http.route": "/checkout"}'
               value="${esc(params.get("labels") || "")}" spellcheck="false"></label>
        <button>Show</button>
      </form>
    </section>
    <section class="panel" id="chart"></section>`;
  const names = await api(`/api/otel/metrics?lookback=${encodeURIComponent(lookbackText)}`);
  const chosen = params.get("name") || names[0]?.name || "";
  $("#metric").elements.name.innerHTML = options(names.map((m) => m.name), chosen);
  if (!chosen) {
    $("#chart").innerHTML = `<p class="muted">No metric has points in this window.</p>`;
  } else {
    const agg = params.get("agg") || "avg";
    const query = new URLSearchParams({ name: chosen, agg, lookback: lookbackText, bucket: bucketFor(lookbackText) });
    if (params.get("labels")) query.set("labels", params.get("labels"));
    const points = await api(`/api/otel/metric-series?${query}`);
    const unit = names.find((m) => m.name === chosen)?.unit || "";
    const bucketMs = seconds(query.get("bucket")) * 1000;
    const now = Date.now();
    // Buckets are aligned to whole multiples of their length: the first may start before the window.
    const first = Math.floor((now - seconds(lookbackText) * 1000) / bucketMs) * bucketMs;
    $("#chart").innerHTML = `<h2>${esc(chosen)} · ${esc(agg)} by ${esc(query.get("bucket"))}` +
      `${unit ? ` (${esc(unit)})` : ""}</h2>` + lineChart(points, first, now, bucketMs);
  }
  document.body.dataset.state = "ready";
}

// The buckets with values on the window's time axis (milliseconds); the line joins neighbouring buckets
// only, so that a stretch without points shows as a gap.
function lineChart(points, t0, t1, bucketMs) {
  const known = points.filter((p) => p.value !== null);
  if (!known.length) return `<p class="muted">No value in this window.</p>`;
  const [width, height, left, bottom] = [900, 280, 70, 30];
  const times = points.map((p) => Date.parse(p.bucket_start));
  let [low, high] = [Math.min(...known.map((p) => p.value)), Math.max(...known.map((p) => p.value))];
  if (low === high) [low, high] = [low - 1, high + 1];
  const x = (t) => left + ((t - t0) / Math.max(t1 - t0, 1)) * (width - left - 10);
  const y = (v) => 10 + (1 - (v - low) / (high - low)) * (height - bottom - 10);
  let path = "";
  let previous = null;
  points.forEach((p, i) => {
    if (p.value === null) { previous = null; return; }
    const joined = previous !== null && times[i] - previous <= bucketMs;
    path += `${joined ? "L" : "M"}${x(times[i]).toFixed(1)},${y(p.value).toFixed(1)}`;
    previous = times[i];
  });
  const dots = points.map((p, i) => p.value === null ? "" :
    `<circle cx="${x(times[i]).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2.5">` +
    `<title>${esc(when(p.bucket_start))}: ${esc(p.value)}</title></circle>`).join("");
  const label = (v) => esc(Number(v.toPrecision(4)));
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="metric chart">
      <line class="axis" x1="${left}" y1="${height - bottom}" x2="${width - 10}" y2="${height - bottom}"/>
      <line class="axis" x1="${left}" y1="10" x2="${left}" y2="${height - bottom}"/>
      <text x="${left - 6}" y="14" text-anchor="end">${label(high)}</text>
      <text x="${left - 6}" y="${height - bottom}" text-anchor="end">${label(low)}</text>
      <text x="${left}" y="${height - 8}">${esc(when(t0 * 1000))}</text>
      <text x="${width - 10}" y="${height - 8}" text-anchor="end">${esc(when(t1 * 1000))}</text>
      <path d="${path}"/>${dots}
    </svg>
    <p class="muted">${esc(known.length)} buckets with a value; the latest ${label(known[known.length - 1].value)}.</p>`;
}

// ------------------------------------------------------------------ start

function route() {
  const path = location.pathname;
  if (path.startsWith("/trace/")) {
    const id = path.slice("/trace/".length);
    if (!/^[0-9a-fA-F]{1,32}$/.test(id)) {
      return ["search", async () => { throw new ApiError(400, `“${id}” is not a trace ID: up to 32 hex digits.`); }];
    }
    return ["search", () => showTrace(id.toLowerCase().padStart(32, "0"))];
  }
  if (path === "/dead-letters") return ["dead-letters", showDeadLetters];
  if (path === "/metrics") return ["metrics", showMetrics];
  return ["search", showSearch];
}

document.addEventListener("DOMContentLoaded", () => {
  const [name, show] = route();
  document.body.dataset.state = "loading";
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.view === name);
  }
  $("#open-trace").onsubmit = (event) => {
    event.preventDefault();
    const id = event.target.elements.trace.value.trim();
    if (/^[0-9a-fA-F]{1,32}$/.test(id)) location.assign(`/trace/${id.toLowerCase()}`);
    else showProblem(new ApiError(400, `A trace ID is up to 32 hex digits, not “${id}”.`));
  };
  show().catch(showProblem);
});
