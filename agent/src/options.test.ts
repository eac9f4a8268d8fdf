import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAgentOptions } from "./options.js";
import { buildProgram } from "./cli.js";

test("the config file's port is kept when --port is not given (the flag has no default to override it)", () => {
  const agent = buildProgram().commands.find((c) => c.name() === "agent");
  assert.equal(agent?.options.find((o) => o.long === "--port")?.defaultValue, undefined);
  const dir = mkdtempSync(join(tmpdir(), "canopy-opts-"));
  try {
    const file = join(dir, "agent.json");
    writeFileSync(file, JSON.stringify({ device: "d1", hub: ["nats-leaf://127.0.0.1:7422"], data: join(dir, "data"), port: 5123 }));
    assert.equal(loadAgentOptions({ port: undefined }, file).port, 5123);
    assert.equal(loadAgentOptions({ port: 6000 }, file).port, 6000, "a given flag still wins");
    writeFileSync(file, JSON.stringify({ device: "d1", hub: ["nats-leaf://127.0.0.1:7422"], data: join(dir, "data") }));
    assert.equal(loadAgentOptions({}, file).port, 4223, "the schema's default");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
