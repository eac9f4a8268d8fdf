import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

/** Debian's chromium (deploy/scripts/ensure-deps.sh installs it with CANOPY_WITH_CHROMIUM=1). */
export const CHROMIUM = process.env.CANOPY_CHROMIUM ?? "/usr/bin/chromium";

/** Screenshots a person can look at after a run: test/artifacts/console/ (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL("../../artifacts/console/", import.meta.url));

/**
 * Flags that keep Chromium off the network it would otherwise call home to (component updates,
 * sync, field trials, QUIC probes): on a closed network those calls flood and slow everything.
 */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (own cookies) per session. */
  context(): Promise<BrowserContext>;
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Chromium with a fresh profile: Playwright's launch() gives every browser a new temporary
 * `--user-data-dir` of its own (and refuses the flag in `args`); HOME and the XDG dirs point into a
 * temp dir too, so nothing of the machine's user leaks in or out.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), "canopy-chromium-"));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    env: { ...process.env, HOME: profile, XDG_CONFIG_HOME: join(profile, "config"), XDG_CACHE_HOME: join(profile, "cache") },
    timeout: 60_000,
  });
  await mkdir(ARTIFACTS, { recursive: true });
  return {
    browser,
    context: () => browser.newContext({ viewport: { width: 1280, height: 900 } }),
    async screenshot(page, name) {
      const path = join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await browser.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
