// Usage chart of the tenant page: SVG built element by element; every label is set with
// textContent, so no value from the API is ever parsed as markup.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 760, PANEL = 120, TOP = 22, BOTTOM = 18, LEFT = 64;
const COLOURS = ["#2f6db5", "#d8782f", "#3a9a5b", "#b8405e", "#7a5bb5", "#8a7a2f"];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Exact decimal strings summed without floats: scaled BigInt arithmetic.
export function addDecimal(a, b) {
  const [ai, af = ""] = a.split("."), [bi, bf = ""] = b.split(".");
  const scale = Math.max(af.length, bf.length);
  const sum = BigInt(ai + af.padEnd(scale, "0")) + BigInt(bi + bf.padEnd(scale, "0"));
  if (scale === 0) return sum.toString();
  const neg = sum < 0n, digits = (neg ? -sum : sum).toString().padStart(scale + 1, "0");
  let frac = digits.slice(-scale).replace(/0+$/, "");
  const whole = digits.slice(0, -scale);
  return (neg ? "-" : "") + whole + (frac ? "." + frac : "");
}

// Daily rows of the usage route -> {"sku (unit)": {sku, unit, days: {YYYY-MM-DD: quantity}}}:
// one series per SKU and unit, since quantities of different units are never added.
export function byDayAndSku(rows) {
  const out = new Map();
  for (const row of rows) {
    const day = row.period_start.slice(0, 10);
    const key = `${row.product_sku} (${row.unit})`;
    if (!out.has(key)) out.set(key, { sku: row.product_sku, unit: row.unit, days: new Map() });
    const days = out.get(key).days;
    days.set(day, addDecimal(days.get(day) ?? "0", row.quantity));
  }
  return out;
}

function daysOf(period) {
  const [y, m] = period.split("-").map(Number);
  const count = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Array.from({ length: count }, (_, i) => `${period}-${String(i + 1).padStart(2, "0")}`);
}

export function drawUsageChart(container, rows, period) {
  container.replaceChildren();
  const series = byDayAndSku(rows);
  if (series.size === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = `No usage in ${period}.`;
    container.append(p);
    return;
  }
  const days = daysOf(period);
  const step = (WIDTH - LEFT - 8) / days.length;
  const keys = [...series.keys()].sort();
  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${keys.length * PANEL}`, width: WIDTH,
    role: "img", "aria-label": `usage by day and SKU in ${period}`, id: "usage-chart",
  });
  keys.forEach((key, index) => {
    const { sku, unit, days: quantities } = series.get(key);
    const top = index * PANEL + TOP, height = PANEL - TOP - BOTTOM;
    // Heights only: the exact quantity is in each bar's title and the table below.
    const max = Math.max(...[...quantities.values()].map(Number));
    const g = el("g", { class: "panel", "data-sku": sku });
    g.append(el("text", { x: 0, y: top - 8, class: "sku" }, `${sku} (${unit})`));
    g.append(el("text", { x: LEFT - 6, y: top + 4, class: "axis", "text-anchor": "end" },
      String(max)));
    g.append(el("text", { x: LEFT - 6, y: top + height, class: "axis", "text-anchor": "end" }, "0"));
    g.append(el("line", { x1: LEFT, x2: WIDTH - 8, y1: top + height, y2: top + height,
      class: "baseline" }));
    days.forEach((day, i) => {
      const quantity = quantities.get(day);
      const x = LEFT + i * step;
      if (i % 5 === 0 || i === days.length - 1) {
        g.append(el("text", { x: x + step / 2, y: top + height + 13, class: "axis",
          "text-anchor": "middle" }, day.slice(8)));
      }
      if (quantity === undefined || Number(quantity) === 0) return;
      const h = max > 0 ? Math.max(1, (Number(quantity) / max) * height) : 1;
      const bar = el("rect", {
        class: "bar", x: x + 1, y: top + height - h, width: Math.max(1, step - 2), height: h,
        fill: COLOURS[index % COLOURS.length], "data-day": day, "data-sku": sku,
        "data-quantity": quantity,
      });
      bar.append(el("title", {}, `${day} ${sku}: ${quantity} ${unit}`));
      g.append(bar);
    });
    svg.append(g);
  });
  container.append(svg);
}
