import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentState } from "../../state/store.js";
import type { AgentOptions } from "../../options.js";
import { execAllowlist, readLocalAllowlist } from "./exec-allow.js";

test("the exec allowlist is local (file + --allow-exec); remote exec.allow narrows it and never widens it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-exec-"));
  const state = AgentState.open(dir);
  const file = join(dir, "exec.allow");
  try {
    await writeFile(file, "# scripts\n/opt/a.sh\n/opt/b.sh  # trailing comment\nrelative.sh\n", { mode: 0o644 });
    const options = { allowExec: ["/opt/local.sh"], execAllowFile: file } as AgentOptions;
    assert.deepEqual(execAllowlist({ state, options }), ["/opt/a.sh", "/opt/b.sh", "/opt/local.sh"]);
    await state.config.put("effective", { "exec.allow": ["/opt/a.sh", "/opt/evil.sh", "rel.sh", 5] });
    assert.deepEqual(execAllowlist({ state, options }), ["/opt/a.sh"], "narrowed, /opt/evil.sh not added");
    await state.config.put("effective", { "exec.allow": "/opt/evil.sh" });
    assert.deepEqual(execAllowlist({ state, options }), [], "a remote-only path is never allowed");
    await chmod(file, 0o666);
    assert.match(readLocalAllowlist(file).problem ?? "", /writable by group or others/);
    assert.deepEqual(readLocalAllowlist(join(dir, "missing")).paths, []);
  } finally {
    await state.close();
    await rm(dir, { recursive: true, force: true });
  }
});
