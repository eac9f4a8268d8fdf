import { test } from "node:test";
import assert from "node:assert/strict";
import { avrdudeArgs, avrdudeFileFormat, avrdudeSettings } from "./avrdude-args.js";
import { checkIntelHex } from "./avrdude-hex.js";
import { AvrdudeOutput, classifyAvrdudeFailure } from "./avrdude-output.js";
import { FlashError, type FlashProgress } from "./flasher.js";

/** avrdude 7.1's stderr on a pipe, as captured from a flash through simavr + optiboot (paths shortened). */
const REAL_RUN = [
  `avrdude OS error: ioctl("TIOCMGET"): Inappropriate ioctl for device\n\n`,
  "avrdude: AVR device initialized and ready to accept instructions\n",
  "avrdude: device signature = 0x1e950f (probably m328p)\n",
  "avrdude: erasing chip\navrdude: reading input file /tmp/x/image.hex for flash\n",
  "         with 30364 bytes in 1 section within [0, 0x769b]\n         using 238 pages and 100 pad bytes\n",
  "avrdude: writing 30364 bytes flash ...\n\nWriting | ",
  "#".repeat(25),
  "#".repeat(25) + " | 100% 3.35s\n\n",
  "avrdude: 30364 bytes of flash written\n",
  "avrdude: verifying flash memory against /tmp/x/image.hex\n\nReading | ",
  "#".repeat(10),
  "#".repeat(40) + " | 100% 3.98s\n\n",
  "avrdude: 30364 bytes of flash verified\n\navrdude done.  Thank you.\n\n",
];

test("avrdude output: progress bars become flashing / verifying events with byte counts", () => {
  const events: FlashProgress[] = [];
  const out = new AvrdudeOutput(30000, (p) => events.push(p));
  for (const chunk of REAL_RUN) out.push(chunk);
  const brief = events.map((e) => `${e.phase}:${e.bytes}/${e.total}`);
  assert.deepEqual(brief, [
    "flashing:0/30364",
    "flashing:15182/30364",
    "flashing:30364/30364",
    "verifying:0/30364",
    "verifying:6073/30364",
    "verifying:30364/30364",
  ]);
  assert.equal(out.written, 30364);
  assert.ok(out.allLines().some((l) => l.includes("30364 bytes of flash verified")));
});

test("avrdude output: a bar split at any byte boundary gives the same events", () => {
  const whole = REAL_RUN.join("");
  const reference: string[] = [];
  const a = new AvrdudeOutput(1, (p) => reference.push(`${p.phase}:${p.bytes}`));
  a.push(whole);
  for (let cut = 1; cut < whole.length; cut += 97) {
    const got: string[] = [];
    const b = new AvrdudeOutput(1, (p) => got.push(`${p.phase}:${p.bytes}`));
    b.push(whole.slice(0, cut));
    b.push(whole.slice(cut));
    assert.equal(got.at(-1), reference.at(-1));
    assert.ok(got.includes("flashing:30364") && got.includes("verifying:30364"), `cut at ${cut}`);
  }
});

test("avrdude failures map to flash error codes", () => {
  const cases: Array<[string, string]> = [
    ["avrdude: verification mismatch\n        device 0x00 != input 0x0c at addr 0x0000 (error)", "verify_failed"],
    ["avrdude stk500_recv() error: programmer is not responding\navrdude stk500_getsync() warning: attempt 10 of 10: not in sync: resp=0x00", "no_response"],
    ["avrdude OS error: cannot open port /dev/ttyACM9: No such file or directory\navrdude error: unable to open programmer arduino on port /dev/ttyACM9", "no_response"],
    ["avrdude error: protocol expects OK byte 0x10 but got 0x14\navrdude error: initialization failed, rc=-1", "no_response"],
    ["avrdude error: expected signature for ATmega2560 is 1E 98 01\n        double check chip or use -F to override this check", "tool_failed"],
    ["avrdude error: program size 40000 exceeds flash size 32768", "bad_image"],
    ["avrdude error: invalid file format 'q' in update specifier", "bad_image"],
    ["something nobody has seen before", "tool_failed"],
  ];
  for (const [text, code] of cases) assert.equal(classifyAvrdudeFailure(text.split("\n")).code, code, text);
});

test("avrdude settings and arguments: defaults, options, refusals", () => {
  const d = avrdudeSettings(undefined, undefined);
  assert.deepEqual(avrdudeArgs(d, "/dev/ttyACM0", "/tmp/a/image.hex", "i"), ["-c", "arduino", "-b", "115200", "-p", "m328p", "-P", "/dev/ttyACM0", "-U", "flash:w:/tmp/a/image.hex:i"]);
  const s = avrdudeSettings({ part: "m2560", programmer: "wiring", baud: "57600" }, undefined);
  assert.deepEqual(avrdudeArgs(s, "/dev/ttyUSB1", "/tmp/b/image.bin", avrdudeFileFormat("bin")), ["-c", "wiring", "-b", "57600", "-p", "m2560", "-P", "/dev/ttyUSB1", "-U", "flash:w:/tmp/b/image.bin:r"]);
  assert.equal(avrdudeSettings({ baud: "9600" }, 19200).baud, 19200, "the request's baud wins over the option");
  assert.equal(avrdudeFileFormat("avr-hex"), "i");
  assert.deepEqual(avrdudeSettings({ appBaud: "9600", attempts: "3" }, undefined), { part: "m328p", programmer: "arduino", baud: 115200, appBaud: 9600, attempts: 3 });
  for (const bad of [{ part: "-Uflash:r:/etc/x:i" }, { part: "m328p;rm" }, { programmer: "" }, { baud: "fast" }, { baud: "12" }, { appBaud: "x" }, { attempts: "0" }, { attempts: "9" }]) {
    assert.throws(() => avrdudeSettings(bad, undefined), /avrdude (part|programmer|baud|appBaud|attempts)/, JSON.stringify(bad));
  }
  assert.throws(() => avrdudeArgs(d, "ttyACM0", "/tmp/a/image.hex", "i"), /absolute device path/);
  assert.throws(() => avrdudeArgs(d, "/dev/ttyACM0", "/tmp/a:b/image.hex", "i"), /must not contain ':'/);
});

test("Intel HEX check: sizes, and truncated or corrupted images refused as bad_image", () => {
  const hex = ":100000000C9434000C943E000C943E000C943E0082\n:0400000300007E007B\n:00000001FF\n";
  assert.deepEqual(checkIntelHex(Buffer.from(hex)), { bytes: 16, end: 16 });
  const ext = ":020000040001F9\n:02000000AABB99\n:00000001FF\n";
  assert.deepEqual(checkIntelHex(Buffer.from(ext)), { bytes: 2, end: 0x10002 });
  const refuse = (text: string, re: RegExp): void => {
    assert.throws(() => checkIntelHex(Buffer.from(text)), (e: unknown) => e instanceof FlashError && e.code === "bad_image" && re.test(e.message));
  };
  refuse(hex.replace(":00000001FF\n", ""), /no end record/);
  refuse(hex.replace("82\n", "83\n"), /line 1: checksum/);
  refuse(hex.replace(":1000", ":1100"), /line 1: record length/);
  refuse("hello\n", /not a HEX record/);
  refuse(":00000001FF\n", /no data/);
});
