import { test } from "node:test";
import assert from "node:assert/strict";
import { Cleanup, leafEnv, startBridge } from "./bridge-support.js";

// A bridge whose leaf died first (the agent's group stopped, or the leaf crashed) must still stop on
// one SIGTERM: seen once, a bridge orphaned by its agent ran on for 5 min after its SIGTERM (which kept
// `userdel` from removing the canopy user at uninstall). Every step of its stop is bounded, and
// past 10 s it exits regardless.
test("one SIGTERM stops the bridge within 12 s, also when its leaf was SIGKILLed before", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-stop-");
  const bridge = await startBridge(cleanup, [
    "--device", "d1", "--leaf", leaf.server.url, "--data", `${dir.path}/data`,
    "--serial", `${dir.path}/none-*`, "--mqtt", "127.0.0.1:0",
  ]);
  await leaf.server.kill();
  const t0 = Date.now();
  process.kill(bridge.pid, "SIGTERM");
  const code = await Promise.race([bridge.exited, new Promise((r) => setTimeout(r, 12_000, "still running").unref())]);
  assert.notEqual(code, "still running", `bridge output:\n${bridge.output.slice(-15).join("\n")}`);
  t.diagnostic(`exited ${String(code)} ${Date.now() - t0} ms after SIGTERM`);
});
