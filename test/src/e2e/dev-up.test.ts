import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, runCanopy, tempDir, type TempDir } from "../harness/index.js";

let dir: TempDir | undefined;
let demo: CanopyProcess | undefined;
after(async () => {
  await demo?.stop();
  await dir?.remove();
});

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

test("canopy dev up: hub + devices online with MCUs; Ctrl-C (SIGINT to the group) stops everything, no orphans", async () => {
  dir = await tempDir();
  demo = new CanopyProcess(["dev", "up", "--devices", "2", "--data", join(dir.path, "demo"), "--free-ports"]);
  await demo.waitForOutput(/Canopy demo is up/, 60_000);
  const server = /export CANOPY_SERVER=(\S+)/.exec(await demo.waitForOutput(/export CANOPY_SERVER=/))?.[1] ?? "";
  const env = { CANOPY_SERVER: server };
  await waitFor(
    async () => {
      const r = await runCanopy(["devices", "--json"], { env });
      const list = JSON.parse(r.stdout) as Array<{ id: string; online: boolean }>;
      return list.length === 2 && list.every((d) => d.online);
    },
    { timeoutMs: 30_000, intervalMs: 500, what: "both demo devices online" },
  );
  await waitFor(
    async () => {
      const r = await runCanopy(["mcu", "list", "--json"], { env });
      return (JSON.parse(r.stdout) as Array<{ online: boolean }>).filter((m) => m.online).length === 2;
    },
    { timeoutMs: 30_000, intervalMs: 500, what: "the demo's serial and MQTT MCUs online" },
  );
  demo.killGroup("SIGINT");
  await waitFor(() => !groupAlive(demo?.pid ?? 0), { timeoutMs: 30_000, intervalMs: 200, what: "every demo process gone" });
});
