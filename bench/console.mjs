#!/usr/bin/env node
// Web console benchmark (issue 14). Run after `npm run build` (needs Debian's chromium:
// CANOPY_WITH_CHROMIUM=1 bash deploy/scripts/ensure-deps.sh):
//   node bench/console.mjs [--devices 1000] [--runs 5]
// A real hub serving the console and N simulated agents (`canopy sim fleet`), driven by chromium:
//   weight   bytes the fleet page transfers (gzip) vs a hand-written page with no libraries that
//            renders the same table from the same API (the baseline, served same-origin)
//   render   navigation → all N rows in the DOM, console vs that baseline page (median of runs)
//   plot     a real agent's 20,000 readings in its hub shard: navigation → the device page's plot
//            drawn with every point, vs fetching the same series from the API alone
//   live     10 more devices start: time until the open page shows N+10 rows without a reload,
//            vs the CLI (`canopy devices --json`, polled) seeing them
// and ends with one JSON line.
import { Fleet, CanopyProcess, publishSeries, waitForCount } from "@canopy/test/harness/index";
import { launchBrowser } from "@canopy/test/console/browser";
import { emit, figure } from "./lib/report.mjs";

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const devices = Number(flag("devices", "1000"));
const runs = Number(flag("runs", "5"));
const points = Number(flag("points", "20000"));
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

/** Resolves on the simulator's sim-ready line; fails as soon as it exits instead. */
async function simReady(proc) {
  await Promise.race([
    proc.waitForOutput(/"event":"sim-ready"/, 300_000),
    proc.exited.then((code) => {
      throw new Error(`canopy sim fleet exited (${code}): ${proc.output.slice(-3).join(" | ")}`);
    }),
  ]);
}

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
  sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(devices), "--server", fleet.hub.client, "--heartbeat", "10s", "--per-connection", "200", "--log-level", "warn"], fleet.env));
  await simReady(sims[0]);
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

  // Plot: a real device with `points` readings in the hub.
  await fleet.startAgent("plot-dev");
  const sent = await publishSeries(await fleet.leafConnection("plot-dev"), { device: "plot-dev", subject: "up.plot-dev.tlm.temp", count: points });
  const shard = JSON.parse((await fleet.cli(["devices", "--json"])).stdout).find((d) => d.id === "plot-dev").shard;
  await waitForCount(await fleet.hubConnection(), shard, "up.plot-dev.tlm.temp", sent.size, 120_000);
  const fetchMs = [];
  const plotMs = [];
  for (let i = 0; i < runs; i++) {
    const t = Date.now();
    const r = await fetch(`${base}/api/devices/plot-dev/telemetry?metric=temp&since=1h`, { headers: { Authorization: `Bearer ${token}` } });
    const n = (await r.json()).t.length;
    fetchMs.push(Date.now() - t);
    if (n !== sent.size) throw new Error(`API returned ${n} of ${sent.size} points`);
    await page.goto(`${base}/#/fleet`);
    const t2 = Date.now();
    await page.goto(`${base}/#/device/plot-dev`);
    await page.waitForFunction(
      (k) => Number(document.querySelector('[data-testid="plot-points"]')?.getAttribute("data-points")) >= k && document.querySelector('[data-testid="plot"] canvas'),
      sent.size,
      { timeout: 120_000, polling: 50 },
    );
    plotMs.push(Date.now() - t2);
  }
  console.log(`plot of ${sent.size} points: page ${plotMs.join(", ")} ms; API fetch alone ${fetchMs.join(", ")} ms`);
  await page.goto(`${base}/#/fleet`);
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="fleet-row"]').length >= k, devices, { timeout: 120_000, polling: 50 });

  // Live: the fleet page is open; 10 more devices come up.
  await page.evaluate("window.__noReload = 1");
  const extra = 10;
  const late = new CanopyProcess(["sim", "fleet", "--devices", String(extra), "--prefix", "late", "--server", fleet.hub.client, "--heartbeat", "10s", "--per-connection", "10", "--log-level", "warn"], fleet.env);
  sims.push(late);
  // From the moment the new devices are enrolled and reporting (sim-ready).
  await simReady(late);
  const t1 = Date.now();
  const cli = (async () => {
    while (Date.now() - t1 < 120_000) {
      const r = await fleet.cli(["devices", "--json"]);
      if (r.code === 0 && JSON.parse(r.stdout).length >= devices + extra + 1) return Date.now() - t1;
    }
    throw new Error("the CLI did not list the new devices within 120 s");
  })();
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="fleet-row"]').length >= k, devices + extra + 1, { timeout: 60_000, polling: 50 });
  const liveMs = Date.now() - t1;
  const cliMs = await cli;
  const noReload = (await page.evaluate("window.__noReload")) === 1;
  const online = await page.textContent('[data-testid="fleet-summary"]');
  console.log(`live: ${extra} new devices on the open page after ${liveMs} ms (no reload: ${noReload}, ${online}); CLI saw them after ${cliMs} ms`);
  if (!noReload) throw new Error("the page reloaded");

  const render = median(consoleMs);
  const baseRender = median(baselineMs);
  emit("console", [
    figure({ name: "page weight (gzip: html + js + css)", value: weight, unit: "B", baseline: baselineWeight, goal: 150_000, goalOn: "value", better: "lower" }),
    figure({ name: `fleet page first render, ${devices} devices (median of ${runs})`, value: render, unit: "ms", baseline: baseRender, goal: 2, goalOn: "ratio", better: "lower" }),
    figure({ name: `device plot of ${sent.size} points drawn (median of ${runs})`, value: median(plotMs), unit: "ms", baseline: median(fetchMs), goal: 3_000, goalOn: "value", better: "lower" }),
    figure({ name: "new devices shown live, no reload (baseline: CLI polling)", value: liveMs, unit: "ms", baseline: cliMs, goal: 5_000, goalOn: "value", better: "lower" }),
  ]);
} finally {
  await browser?.close();
  for (const s of sims) await s.stop();
  await fleet.stop();
}
