// Drives the tenant page in headless Chromium and prints what it saw as JSON; the pytest test
// (test_tenant_page.py) decides whether that is right. Usage: node tenant_page.cjs '<json>'
// with {playwright, chromium, url, key, tenant, other, period, sku, screenshot}.
"use strict";

const spec = JSON.parse(process.argv[2]);
const { chromium } = require(spec.playwright);

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

async function submit(page, key, tenant, period) {
  await page.fill("#key", key);
  await page.fill("#tenant", tenant);
  await page.fill("#period", period);
  await page.click("button[type=submit]");
}

// Waits until the page has either shown results with both invoice sections filled, or an error.
async function settled(page) {
  await page.waitForFunction(() => {
    const message = document.getElementById("message");
    if (!message.hidden && message.className === "error") return true;
    const results = document.getElementById("results");
    return !results.hidden &&
      document.querySelector("#draft .body").childElementCount > 0 &&
      document.querySelector("#final .body").childElementCount > 0;
  }, null, { timeout: 15000 });
}

function observe(page) {
  return page.evaluate(() => ({
    message: document.getElementById("message").hidden ? "" :
      document.getElementById("message").textContent,
    resultsHidden: document.getElementById("results").hidden,
    bars: [...document.querySelectorAll("#usage-chart rect.bar")].map((b) => ({
      day: b.dataset.day, sku: b.dataset.sku, quantity: b.dataset.quantity,
    })),
    draft: document.querySelector("#draft .body").innerText,
    final: document.querySelector("#final .body").innerText,
    text: document.body.innerText,
  }));
}

(async () => {
  const out = { console: [], responses: [] };
  const browser = await chromium.launch({ executablePath: spec.chromium, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 860, height: 900 } });
    page.on("console", (m) => { if (m.type() === "error") out.console.push(m.text()); });
    page.on("pageerror", (e) => out.console.push(String(e)));
    page.on("response", (r) => out.responses.push([r.status(), new URL(r.url()).pathname]));

    const loaded = await page.goto(`${spec.url}/ui`);
    out.pageStatus = loaded.status();
    out.title = await page.title();

    await submit(page, spec.key, spec.tenant, spec.period);
    await settled(page);
    out.own = await observe(page);

    await page.click(`button.lineage-link[data-sku="${spec.sku}"]`);
    await page.waitForSelector("#lineage-table");
    out.lineage = await page.$$eval("#lineage-table tbody tr", (rows) =>
      rows.map((r) => [...r.cells].map((c) => c.textContent)));
    await page.screenshot({ path: spec.screenshot, fullPage: true });

    await submit(page, spec.key, spec.other, spec.period);
    await settled(page);
    out.other = await observe(page);

    await submit(page, spec.key + "x", spec.tenant, spec.period);
    await settled(page);
    out.badKey = await observe(page);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch((error) => {
  process.stderr.write(String(error && error.stack || error));
  process.exit(1);
});
