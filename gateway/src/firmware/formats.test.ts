import { test } from "node:test";
import assert from "node:assert/strict";
import { checkFormat } from "./formats.js";

test("Intel HEX: valid records pass; bad checksum, missing EOF and garbage are refused", () => {
  const ok = ":0400000001020304F2\n:00000001FF\n";
  assert.doesNotThrow(() => checkFormat(Buffer.from(ok), "avr-hex"));
  assert.throws(() => checkFormat(Buffer.from(":0400000001020304F3\n:00000001FF\n"), "hex"), /checksum/);
  assert.throws(() => checkFormat(Buffer.from(":0400000001020304F2\n"), "hex"), /end-of-file/);
  assert.throws(() => checkFormat(Buffer.from("hello"), "hex"), /not an Intel HEX record/);
});

test("UF2: 512-byte blocks with the magic numbers; anything else is refused", () => {
  const block = Buffer.alloc(512);
  block.writeUInt32LE(0x0a324655, 0);
  block.writeUInt32LE(0x9e5d5157, 4);
  block.writeUInt32LE(0x0ab16f30, 508);
  assert.doesNotThrow(() => checkFormat(Buffer.concat([block, block]), "uf2"));
  assert.throws(() => checkFormat(Buffer.alloc(512), "uf2"), /magic/);
  assert.throws(() => checkFormat(Buffer.alloc(100), "uf2"), /multiple of 512/);
  assert.throws(() => checkFormat(Buffer.alloc(0), "bin"), /empty/);
});
