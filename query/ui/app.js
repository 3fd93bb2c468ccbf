// The tenant page: reads usage and invoices through the /v1 API with the key typed in.
// The key lives in sessionStorage only (gone when the tab closes) and travels as a Bearer
// header. Everything from the API is rendered with textContent, never as markup.
import { drawUsageChart } from "/ui/chart.js";

const KEY = "pulse.apiKey";
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ""}` },
    cache: "no-store",
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.detail) || response.statusText);
  }
  return body;
}

const enc = encodeURIComponent;

function node(tag, text, className) {
  const n = document.createElement(tag);
  if (text !== undefined && text !== null) n.textContent = String(text);
  if (className) n.className = className;
  return n;
}

function table(headers, rows) {
  const t = node("table");
  const head = node("tr");
  headers.forEach((h) => head.append(node("th", h)));
  t.append(node("thead"));
  t.tHead.append(head);
  const body = node("tbody");
  for (const cells of rows) {
    const tr = node("tr");
    for (const cell of cells) {
      const td = node("td");
      if (cell instanceof Node) td.append(cell);
      else td.textContent = cell === null || cell === undefined ? "" : String(cell);
      tr.append(td);
    }
    body.append(tr);
  }
  t.append(body);
  return t;
}

function say(text, kind = "error") {
  const m = $("message");
  m.textContent = text;
  m.className = kind;
  m.hidden = !text;
}

function explain(error, tenant) {
  if (!(error instanceof ApiError)) return `The API could not be reached: ${error.message}`;
  switch (error.status) {
    case 401:
      return `The API key was refused (401): ${error.message}. Check the key and enter it again.`;
    case 403:
      return `This key may not read usage (403): ${error.message}.`;
    case 404:
      return `Tenant "${tenant}" was not found for this key (404). A tenant key reads only its own tenant.`;
    default:
      return `The API answered ${error.status}: ${error.message}`;
  }
}

function monthBounds(period) {
  const [y, m] = period.split("-").map(Number);
  const start = new Date(Date.UTC(y, m - 1, 1)), end = new Date(Date.UTC(y, m, 1));
  return [start.toISOString(), end.toISOString()];
}

function clearResults() {
  $("results").hidden = true;
  $("chart").replaceChildren();
  for (const id of ["draft", "final", "lineage"]) $(id).querySelector(".body").replaceChildren();
  $("lineage").hidden = true;
}

function lineRows(lines, currency, tenant, period) {
  return lines.map((line) => {
    const follow = node("button", "hours & pulses", "lineage-link");
    follow.type = "button";
    follow.dataset.sku = line.sku;
    follow.addEventListener("click", () => showLineage(tenant, period, line.sku));
    const discount = Number(line.discount_percent) === 0 ? "" :
      `${line.discount_percent}% (−${line.discount_amount} ${currency})`;
    return [
      line.sku, line.kind, `${line.segment_start.slice(0, 10)} → ${line.segment_end.slice(0, 10)}`,
      `${line.quantity} ${line.unit}`, line.billable, line.subtotal, discount,
      `${line.amount} ${currency}`, line.kind === "usage" ? follow : "",
    ];
  });
}

const LINE_HEADERS = ["SKU", "kind", "segment", "quantity", "billable", "subtotal", "discount",
  "amount", "lineage"];

function renderInvoice(target, doc, tenant, period) {
  target.append(table(LINE_HEADERS, lineRows(doc.lines, doc.currency, tenant, period)));
  if (doc.unpriced && doc.unpriced.length) {
    target.append(node("h3", "Unpriced usage"));
    target.append(table(["SKU", "quantity", "reason"],
      doc.unpriced.map((u) => [u.sku, `${u.quantity} ${u.unit}`, u.reason])));
  }
  target.append(node("p", `Total: ${doc.total} ${doc.currency}`, "total"));
}

async function showLineage(tenant, period, sku) {
  const section = $("lineage"), body = section.querySelector(".body");
  body.replaceChildren(node("p", `Loading the lineage of ${sku}…`));
  section.hidden = false;
  try {
    const path = `/v1/tenants/${enc(tenant)}/invoices/${enc(period)}/lines/${enc(sku)}/lineage`;
    const rows = [];
    // A page at a time, following next_cursor (bounded: the table is for reading, not export).
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      const query = cursor === null ? "?limit=1000" : `?limit=1000&cursor=${enc(cursor)}`;
      const lineage = await api(path + query);
      for (const hour of lineage.hours) {
        for (const p of hour.pulses) {
          rows.push([hour.hour, p.pulse_id, `${p.quantity} ${p.unit}`, p.ledger_position, p.arrival]);
        }
      }
      cursor = lineage.next_cursor;
      if (cursor === null) break;
    }
    body.replaceChildren(node("p", `${sku} in ${period}: hour → pulse → Kafka position and arrival`));
    const t = table(["hour (UTC)", "pulse id", "quantity", "partition:offset", "arrival"], rows);
    t.id = "lineage-table";
    body.append(t);
  } catch (error) {
    body.replaceChildren(node("p", explain(error, tenant), "error"));
  }
  section.scrollIntoView({ block: "nearest" });
}

async function show(tenant, period) {
  clearResults();
  say("Loading…", "info");
  const [start, end] = monthBounds(period);
  const base = `/v1/tenants/${enc(tenant)}`;
  let usage;
  try {
    usage = await api(`${base}/usage?start=${enc(start)}&end=${enc(end)}&granularity=day`);
  } catch (error) {
    say(explain(error, tenant));
    return;
  }
  say("");
  $("results").hidden = false;
  drawUsageChart($("chart"), usage.rows, period);

  const draftBody = $("draft").querySelector(".body");
  try {
    renderInvoice(draftBody, await api(`${base}/invoices/${enc(period)}/draft`), tenant, period);
  } catch (error) {
    draftBody.append(node("p", explain(error, tenant), "error"));
  }

  const finalBody = $("final").querySelector(".body");
  try {
    const final = await api(`${base}/invoices/${enc(period)}`);
    finalBody.append(node("p", `SHA-256 ${final.sha256}`, "hash"));
    renderInvoice(finalBody, final.invoice, tenant, period);
    finalBody.append(node("h3", "Correction notes"));
    if (!final.corrections.length) finalBody.append(node("p", "None.", "empty"));
    for (const note of final.corrections) {
      finalBody.append(node("p",
        `${note.title}: ${note.total} ${final.invoice.currency} (invoice ${note.references.slice(0, 16)}…)`,
        "note"));
      finalBody.append(table(["SKU", "kind", "segment start", "quantity Δ", "amount Δ"],
        note.lines.map((c) => [c.sku, c.kind, c.segment_start.slice(0, 10), c.quantity_delta,
          c.amount_delta])));
    }
  } catch (error) {
    const text = error instanceof ApiError && error.status === 404
      ? `Not finalized yet: no invoice of ${period} has been finalized.`
      : explain(error, tenant);
    finalBody.append(node("p", text, "empty"));
  }
}

function start() {
  const form = $("query");
  const now = new Date();
  $("period").value = sessionStorage.getItem("pulse.period") ??
    `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
  $("tenant").value = sessionStorage.getItem("pulse.tenant") ?? "";
  $("key").value = sessionStorage.getItem(KEY) ?? "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const tenant = $("tenant").value.trim(), period = $("period").value;
    sessionStorage.setItem(KEY, $("key").value.trim());
    sessionStorage.setItem("pulse.tenant", tenant);
    sessionStorage.setItem("pulse.period", period);
    show(tenant, period);
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("key").value = "";
    clearResults();
    say("The key was removed from this tab.", "info");
  });
}

start();
