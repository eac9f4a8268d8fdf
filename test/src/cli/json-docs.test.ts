import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CLI_JSON_SCHEMAS } from "@canopy/gateway/cli/json/schemas";

// docs/schemas/*.json are generated from the zod schemas the CLI tests validate output with; this
// test fails when they differ (CANOPY_WRITE_SCHEMAS=1 rewrites them).
const DOCS = fileURLToPath(new URL("../../../docs/schemas/", import.meta.url));

test("docs/schemas/*.json match the zod schemas of the CLI's --json output", async () => {
  await mkdir(DOCS, { recursive: true });
  const stale: string[] = [];
  for (const [name, schema] of Object.entries(CLI_JSON_SCHEMAS)) {
    const want = JSON.stringify(z.toJSONSchema(schema, { io: "output" }), null, 2) + "\n";
    const file = join(DOCS, `${name}.json`);
    const have = await readFile(file, "utf8").catch(() => "");
    if (have === want) continue;
    if (process.env.CANOPY_WRITE_SCHEMAS === "1") await writeFile(file, want);
    else stale.push(name);
  }
  assert.deepEqual(stale, [], "regenerate with CANOPY_WRITE_SCHEMAS=1 node test/run.mjs json-docs");
  const index = await readFile(fileURLToPath(new URL("../../../docs/json.md", import.meta.url)), "utf8");
  for (const name of Object.keys(CLI_JSON_SCHEMAS)) assert.ok(index.includes(`schemas/${name}.json`), `docs/json.md links ${name}`);
});
