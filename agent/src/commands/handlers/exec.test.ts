import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentState } from "../../state/store.js";
import type { AgentOptions } from "../../options.js";
import { execAllowlist } from "./exec.js";

test("the exec allowlist is the applied config's exec.allow plus --allow-exec; relative paths are ignored", async () => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-exec-"));
  const state = AgentState.open(dir);
  try {
    const options = { allowExec: ["/opt/local.sh"] } as AgentOptions;
    assert.deepEqual(execAllowlist({ state, options }), ["/opt/local.sh"]);
    await state.config.put("effective", { "exec.allow": ["/opt/a.sh", "rel.sh", 5, "/opt/local.sh"] });
    assert.deepEqual(execAllowlist({ state, options }), ["/opt/a.sh", "/opt/local.sh"]);
    await state.config.put("effective", { "exec.allow": "/opt/one.sh" });
    assert.deepEqual(execAllowlist({ state, options }), ["/opt/one.sh", "/opt/local.sh"]);
  } finally {
    await state.close();
    await rm(dir, { recursive: true, force: true });
  }
});
