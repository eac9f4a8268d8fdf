import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, Fleet, json } from "../harness/index.js";
import { launchBrowser, type TestBrowser } from "./browser.js";
import { api, attachSimMcu, consoleUrl, freePort, mintToken } from "./helpers.js";

// Browser → console → hub → leaf → agent → bridge → MCU, all real: a hub serving the console,
// 3 agents (2 in group lab), a simulated MCU on pi-a's bridge, Debian's chromium driven by playwright.
const HEARTBEAT_MS = 2_000;
const MIN_POINTS = 100;
const MCU_RATE_HZ = 20;

let fleet: Fleet;
let browser: TestBrowser;
let ctx: BrowserContext;
let page: Page;
let sim: CanopyProcess | undefined;
let base: string;
let token: string;

before(async () => {
  fleet = await Fleet.start({ hubArgs: ["--console-port", "0"] });
  base = consoleUrl(fleet);
  const mqttPort = await freePort();
  const hb = `${HEARTBEAT_MS / 1000}s`;
  await Promise.all([
    fleet.startAgent("pi-a", { groups: ["lab"], heartbeat: hb, args: ["--bridge-mqtt", `127.0.0.1:${mqttPort}`] }),
    fleet.startAgent("pi-b", { groups: ["lab"], heartbeat: hb }),
    fleet.startAgent("pi-c", { groups: ["field"], heartbeat: hb }),
  ]);
  sim = await attachSimMcu(mqttPort, "m1", MCU_RATE_HZ);
  browser = await launchBrowser();
  token = await mintToken(fleet);
  ctx = await browser.context();
  page = await ctx.newPage();
});

after(async () => {
  await browser?.close();
  await sim?.stop();
  await fleet?.stop();
});

test("the API refuses unauthenticated and forged requests", async () => {
  for (const [path, init] of [
    ["/api/fleet", {}],
    ["/api/devices/pi-a", {}],
    ["/api/fleet/events", {}],
    ["/api/devices/pi-a/commands", { method: "POST", body: JSON.stringify({ name: "ping" }) }],
    ["/api/no-such-endpoint", {}],
  ] as const) {
    const r = await api(base, path, undefined, init);
    assert.equal(r.status, 401, `${path} without a token`);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, "UNAUTHORIZED");
  }
  const forged = token.replace(/\.[\w-]+$/, ".AAAA");
  assert.equal((await api(base, "/api/fleet", forged)).status, 401, "bad signature");
  assert.equal((await api(base, "/api/fleet", "cnp1.e30.x")).status, 401, "garbage");
  assert.equal((await api(base, "/api/fleet", token)).status, 200, "a minted token works as Bearer");
});

test("log in once with a console open URL: HttpOnly cookie, the token leaves the address bar; fleet lists 3 devices online", async () => {
  const r = await fleet.cli(["console", "open"]);
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.trim();
  assert.ok(url.startsWith(`${base}/?token=cnp1.`), url);
  await page.goto(url);
  await page.waitForURL((u) => !u.search.includes("token"));
  const cookies = await ctx.cookies(base);
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0]?.httpOnly, true);
  assert.equal(cookies[0]?.sameSite, "Strict");
  assert.equal(await page.evaluate("document.cookie"), "", "scripts cannot read the session cookie");
  await page.locator('[data-testid="fleet-row"][data-state="online"]').nth(2).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('[data-testid="fleet-row"]').count(), 3);
  assert.equal(await page.locator('[data-testid="fleet-row"][data-state="online"]').count(), 3);
  assert.equal(await page.textContent('[data-testid="fleet-summary"]'), "3/3 online");
  await browser.screenshot(page, "fleet");
});

test("stopping an agent turns it offline on the open page within 3 heartbeats, without a reload", async () => {
  await page.evaluate("window.__noReload = 42");
  const started = Date.now();
  await fleet.agent("pi-c").proc.stop();
  await page.locator('[data-testid="fleet-row"][data-device="pi-c"][data-state="offline"]').waitFor({ timeout: 3 * HEARTBEAT_MS + 5_000 });
  const elapsed = Date.now() - started;
  assert.ok(elapsed <= 3 * HEARTBEAT_MS, `offline on the page after ${elapsed} ms (3 heartbeats = ${3 * HEARTBEAT_MS} ms)`);
  assert.equal(await page.evaluate("window.__noReload"), 42, "the page was not reloaded");
  assert.equal(await page.textContent('[data-testid="fleet-summary"]'), "2/3 online");
  await browser.screenshot(page, "fleet-one-offline");
});

test(`device page: plots at least ${MIN_POINTS} points of the sim MCU's telemetry, lists the MCU`, async () => {
  // Enough readings in the hub first (the plot reads what reached the hub shard).
  await waitFor(
    async () => {
      const ms = (await (await api(base, "/api/devices/pi-a/metrics", token)).json()) as Array<{ metric: string; count: number }>;
      return ms.some((m) => m.metric.startsWith("mcu.m1.") && m.count >= MIN_POINTS);
    },
    { timeoutMs: 60_000, intervalMs: 1_000, what: `${MIN_POINTS} MCU readings in the hub` },
  );
  await page.goto(`${base}/#/device/pi-a`);
  const select = page.locator('[data-testid="metric-select"]');
  await select.locator("option").first().waitFor({ state: "attached" });
  const metric = await select.locator("option", { hasText: "mcu.m1." }).first().getAttribute("value");
  assert.ok(metric, "the MCU's metric is offered");
  await select.selectOption(metric);
  const points = page.locator('[data-testid="plot-points"]');
  await waitFor(async () => Number(await points.getAttribute("data-points")) >= MIN_POINTS, { timeoutMs: 20_000, intervalMs: 250, what: "plot points" });
  await page.locator('[data-testid="plot"] canvas').waitFor();
  const n = Number(await points.getAttribute("data-points"));
  assert.ok(n >= MIN_POINTS, `${n} points`);
  await page.locator('[data-testid="mcu-row"]', { hasText: "m1" }).waitFor({ timeout: 20_000 });
  await browser.screenshot(page, "device");
});

test("sending ping from the device page ends in succeeded", async () => {
  await page.fill('[data-testid="cmd-name"]', "ping");
  await page.click('[data-testid="cmd-send"]');
  await page.locator('[data-testid="cmd-row"][data-name="ping"][data-state="succeeded"]').waitFor({ timeout: 30_000 });
  const cmds = json<Array<{ name: string; state: string; by?: string }>>(await fleet.cli(["cmd", "list", "--device", "pi-a", "--json"]));
  assert.equal(cmds.filter((c) => c.name === "ping" && c.state === "succeeded").length, 1);
  assert.match(cmds[0]?.by ?? "", /^console:/);
  await browser.screenshot(page, "device-ping");
});

test("a rollout started from the CLI shows its waves; read-only sees Abort disabled and gets 403; the page aborts it", async () => {
  // A long soak keeps the rollout running after wave 1 passed, so there is something to abort.
  const r = await fleet.cli(["config", "rollout", "log.level", "debug", "--group", "lab", "--waves", "50%,100%", "--soak", "10m", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rollout = json<{ id: string; waves: Array<{ devices: string[] }> }>(r);
  assert.deepEqual(rollout.waves.map((w) => w.devices), [["pi-a"], ["pi-b"]]);

  const roToken = await mintToken(fleet, true);
  const roCtx = await browser.context();
  const roPage = await roCtx.newPage();
  await roPage.goto(`${base}/?token=${roToken}#/rollouts`);
  const roCard = roPage.locator(`[data-testid="rollout"][data-id="${rollout.id}"]`);
  await roCard.waitFor({ timeout: 20_000 });
  await roPage.locator('[data-testid="read-only"]').waitFor();
  assert.equal(await roCard.locator('[data-testid="abort"]').isDisabled(), true, "read-only: Abort disabled");
  const refused = await api(base, `/api/rollouts/${rollout.id}/abort`, roToken, { method: "POST", body: "{}" });
  assert.equal(refused.status, 403);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "FORBIDDEN");
  await browser.screenshot(roPage, "rollouts-read-only");
  await roCtx.close();

  await page.goto(`${base}/#/rollouts`);
  const card = page.locator(`[data-testid="rollout"][data-id="${rollout.id}"]`);
  await card.waitFor({ timeout: 20_000 });
  assert.equal(await card.locator('[data-testid="wave"]').count(), 2);
  await browser.screenshot(page, "rollouts");
  const abort = card.locator('[data-testid="abort"]');
  assert.equal(await abort.isDisabled(), false);
  await abort.click();
  await page.locator(`[data-testid="rollout"][data-id="${rollout.id}"][data-state="halted"]`).waitFor({ timeout: 60_000 });
  const status = json<{ state: string; reason?: string }>(await fleet.cli(["rollout", "status", rollout.id, "--json"]));
  assert.equal(status.state, "halted");
  assert.match(status.reason ?? "", /abort/i);
  await browser.screenshot(page, "rollouts-aborted");
});

test("query page: answers stream in for the 2 online devices, the stopped one is listed silent with its fact age", async () => {
  await page.goto(`${base}/#/query`);
  await page.fill('[data-testid="query-expr"]', "true");
  await page.click('[data-testid="query-run"]');
  await page.locator('[data-testid="query-silent"]').first().waitFor({ timeout: 20_000 });
  assert.equal(await page.locator('[data-testid="query-answer"][data-matched="true"]').count(), 2);
  const silent = await page.locator('[data-testid="query-silent"]').allTextContents();
  assert.equal(silent.length, 1);
  assert.match(silent[0] ?? "", /pi-c.*offline.*old/);
  await browser.screenshot(page, "query");
});
