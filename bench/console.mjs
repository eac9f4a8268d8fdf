#!/usr/bin/env node
// Web console benchmark (issue 14). Run after `npm run build` (needs Debian's chromium:
// CANOPY_WITH_CHROMIUM=1 bash deploy/scripts/ensure-deps.sh):
//   node bench/console.mjs [--devices 1000] [--runs 5]
// A real hub serving the console and N simulated agents (`canopy sim fleet`), driven by chromium:
//   weight   bytes the fleet page transfers (gzip) vs a hand-written page with no libraries that
//            renders the same table from the same API (the baseline, served same-origin)
//   render   navigation → all N rows in the DOM, console vs that baseline page (median of runs)
//   live     10 more devices start: time until the open page shows N+10 rows without a reload,
//            vs the CLI (`canopy devices --json`, polled) seeing them
// and ends with one JSON line.
import { Fleet, CanopyProcess } from "@canopy/test/harness/index";
import { launchBrowser } from "@canopy/test/console/browser";

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const devices = Number(flag("devices", "1000"));
const runs = Number(flag("runs", "5"));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// The baseline: plain DOM, no framework, no plot library, no live updates.
const BASELINE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>baseline</title></head><body>
<table><thead><tr><th>Device</th><th>State</th><th>OS</th><th>Agent</th></tr></thead><tbody id="b"></tbody></table>
<script>
fetch("/api/fleet").then(r => r.json()).then(rows => {
  const b = document.getElementById("b");
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-testid", "fleet-row");
    for (const v of [r.id, r.online ? "online" : "offline", r.os || "-", r.agentVersion || "-"]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    b.appendChild(tr);
  }
});
</script></body></html>`;

async function gzipBytes(url) {
  const r = await fetch(url, { headers: { "Accept-Encoding": "gzip" } });
  return Number(r.headers.get("content-length") ?? (await r.arrayBuffer()).byteLength);
}

async function timeToRows(page, url, n) {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="fleet-row"]').length >= k, n, { timeout: 120_000, polling: 50 });
  return Date.now() - t0;
}

const fleet = await Fleet.start({ hubArgs: ["--console-port", "0"] });
const sims = [];
let browser;
try {
  const base = fleet.hub.console;
  const t0 = Date.now();
  sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(devices), "--server", fleet.hub.client, "--heartbeat", "10s", "--per-connection", "50", "--log-level", "warn"], fleet.env));
  await sims[0].waitForOutput(/"event":"sim-ready"/, 300_000);
  console.log(`console bench: ${devices} simulated devices up in ${Date.now() - t0} ms; console at ${base}`);

  const tok = await fleet.cli(["console", "token"]);
  const token = tok.stdout.trim().split("\n").at(-1);
  browser = await launchBrowser();
  const ctx = await browser.context();
  await ctx.route(`${base}/baseline.html`, (route) => route.fulfill({ status: 200, contentType: "text/html", body: BASELINE_HTML }));
  const page = await ctx.newPage();
  await page.goto(`${base}/?token=${token}`);

  const weight = (await Promise.all(["/", "/app.js", "/app.css"].map((p) => gzipBytes(`${base}${p}`)))).reduce((a, b) => a + b, 0);
  const baselineWeight = Buffer.byteLength(BASELINE_HTML);
  console.log(`page weight: console ${weight} B (gzip: html + js + css) vs baseline page ${baselineWeight} B`);

  const consoleMs = [];
  const baselineMs = [];
  for (let i = 0; i < runs; i++) {
    baselineMs.push(await timeToRows(page, `${base}/baseline.html`, devices));
    consoleMs.push(await timeToRows(page, `${base}/#/fleet`, devices));
  }
  console.log(`first render of ${devices} rows: console ${consoleMs.join(", ")} ms; baseline ${baselineMs.join(", ")} ms`);

  // Live: the fleet page is open; 10 more devices come up.
  await page.evaluate("window.__noReload = 1");
  const extra = 10;
  const late = new CanopyProcess(["sim", "fleet", "--devices", String(extra), "--prefix", "late", "--server", fleet.hub.client, "--heartbeat", "10s", "--log-level", "warn"], fleet.env);
  sims.push(late);
  // From the moment the new devices are enrolled and reporting (sim-ready).
  await late.waitForOutput(/"event":"sim-ready"/, 120_000);
  const t1 = Date.now();
  const cli = (async () => {
    while (Date.now() - t1 < 120_000) {
      const r = await fleet.cli(["devices", "--json"]);
      if (r.code === 0 && JSON.parse(r.stdout).length >= devices + extra) return Date.now() - t1;
    }
    throw new Error("the CLI did not list the new devices within 120 s");
  })();
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="fleet-row"]').length >= k, devices + extra, { timeout: 60_000, polling: 50 });
  const liveMs = Date.now() - t1;
  const cliMs = await cli;
  const noReload = (await page.evaluate("window.__noReload")) === 1;
  const online = await page.textContent('[data-testid="fleet-summary"]');
  console.log(`live: ${extra} new devices on the open page after ${liveMs} ms (no reload: ${noReload}, ${online}); CLI saw them after ${cliMs} ms`);
  if (!noReload) throw new Error("the page reloaded");

  const render = median(consoleMs);
  const baseRender = median(baselineMs);
  console.log(
    JSON.stringify({
      bench: "console",
      figures: [
        { name: "page weight (gzip)", value: weight, unit: "B", baseline: baselineWeight, ratio: +(weight / baselineWeight).toFixed(2), goal: 150_000, better: "lower" },
        { name: `fleet page first render, ${devices} devices (median of ${runs})`, value: render, unit: "ms", baseline: baseRender, ratio: +(render / baseRender).toFixed(2), goal: 2_000, better: "lower" },
        { name: `new devices shown live (no reload)`, value: liveMs, unit: "ms", baseline: cliMs, ratio: +(liveMs / cliMs).toFixed(2), goal: 5_000, better: "lower" },
      ],
    }),
  );
} finally {
  await browser?.close();
  for (const s of sims) await s.stop();
  await fleet.stop();
}
