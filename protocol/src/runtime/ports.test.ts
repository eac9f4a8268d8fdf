import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { freePort, portWindow } from "./ports.js";

test("freePort: 50 distinct ports, each bindable, all below the ephemeral range", async () => {
  const [low, high] = portWindow();
  assert.ok(low >= 1024 && high > low + 4_000, `window ${low}-${high}`);
  const ports = [];
  for (let i = 0; i < 50; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, 50, "a port was handed out twice");
  for (const p of ports) assert.ok(p >= low && p < high, `${p} outside ${low}-${high}`);
  // Each one really is free: a server binds it.
  for (const p of ports.slice(0, 5)) {
    await new Promise<void>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(p, "127.0.0.1", () => s.close(() => resolve()));
    });
  }
});
