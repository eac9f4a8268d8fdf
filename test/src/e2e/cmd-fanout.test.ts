import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import type { CommandRecord } from "@canopy/protocol";
import { CommandSender, waitForCommands } from "@canopy/gateway/commands/index";
import { Fleet, json } from "../harness/index.js";
import { CmdTool, TEST_HANDLERS, appendArgs, fileLines } from "./cmd-helpers.js";

let fleet: Fleet;
let cmd: CmdTool;
before(async () => {
  fleet = await Fleet.start();
  cmd = await CmdTool.open(fleet);
  await Promise.all([
    fleet.startAgent("g1", { groups: ["lab"], env: TEST_HANDLERS }),
    fleet.startAgent("g2", { groups: ["lab"], env: TEST_HANDLERS }),
  ]);
  await fleet.enroll("g3", ["other"]);
});
after(async () => {
  await fleet?.stop();
});

test("bad usage exits 2 with a clear message and queues nothing", async () => {
  const cases: Array<[string[], RegExp]> = [
    [["cmd", "send", "ping"], /exactly one of --device, --group or --where/],
    [["cmd", "send", "--device", "g1", "--group", "lab", "ping"], /exactly one/],
    [["cmd", "send", "--device", "bad.id", "ping"], /\^\[A-Za-z0-9_-\]\{1,64\}\$/],
    [["cmd", "send", "--where", "os.platform == ", "ping"], /column|position|\^/],
    [["cmd", "send", "--device", "g1", "_cancel"], /reserved/],
    [["cmd", "send", "--device", "g1", "ping", "--args", "{nope"], /--args must be a JSON object/],
    [["cmd", "send", "--device", "g1", "ping", "--arg", "novalue"], /key=value/],
    [["cmd", "send", "--device", "g1", "ping", "--ttl", "40d"], /at most 30d/],
    [["cmd", "send", "--device", "g1", "ping", "--ttl", "soon"], /invalid --ttl/],
    [["cmd", "status", "no.such"], /invalid command id/],
    [["cmd", "list", "--state", "bogus"], /value/],
  ];
  for (const [args, re] of cases) {
    const r = await fleet.cli(args);
    assert.equal(r.code, 2, `${args.join(" ")} → ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
  }
  const unknown = await fleet.cli(["cmd", "status", "0000000000000000000"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no command 0000000000000000000/);
  const notEnrolled = await fleet.cli(["cmd", "send", "--device", "ghost", "ping"]);
  assert.equal(notEnrolled.code, 1);
  assert.match(notEnrolled.stderr, /not enrolled/);
  assert.deepEqual(json<unknown[]>(await fleet.cli(["cmd", "list", "--json"])), []);
});

test("--where picks the live devices whose facts match, and --wait returns their results", async () => {
  const r = await fleet.cli(["cmd", "send", "--where", '"lab" in labels && os.platform == "linux"', "ping", "--wait", "--timeout", "60s", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const records = json<CommandRecord[]>(r);
  assert.deepEqual(records.map((x) => x.device).sort(), ["g1", "g2"]);
  for (const x of records) assert.equal(x.state, "succeeded");
});

test("--group fans out to every member and --wait returns all results", async () => {
  const r = await fleet.cli(["cmd", "send", "--group", "lab", "ping", "--wait", "--timeout", "60s", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const records = json<CommandRecord[]>(r);
  assert.deepEqual(records.map((x) => x.device).sort(), ["g1", "g2"]);
  for (const x of records) {
    assert.equal(x.state, "succeeded");
    assert.equal((x.result as { device?: string }).device, x.device);
  }
  const human = await fleet.cli(["cmd", "list", "--device", "g2"]);
  assert.match(human.stdout, /ping\s+succeeded/);
});

test("unknown command → rejected with the reason; bad args → rejected with the schema message; --wait exits 1", async () => {
  const unknown = await fleet.cli(["cmd", "send", "--device", "g1", "reboot.now", "--wait", "--timeout", "60s", "--json"]);
  assert.equal(unknown.code, 1);
  const [u] = json<CommandRecord[]>(unknown);
  assert.equal(u?.state, "rejected");
  assert.match(u?.error?.message ?? "", /unknown command "reboot.now"/);

  const bad = await fleet.cli(["cmd", "send", "--device", "g1", "logs.tail", "--arg", "lines=lots", "--wait", "--timeout", "60s", "--json"]);
  assert.equal(bad.code, 1);
  const [b] = json<CommandRecord[]>(bad);
  assert.equal(b?.state, "rejected");
  assert.match(b?.error?.message ?? "", /bad arguments for logs\.tail: lines:/);

  const exec = await fleet.cli(["cmd", "send", "--device", "g1", "exec", "--arg", "path=/bin/true", "--wait", "--timeout", "60s", "--json"]);
  const [e] = json<CommandRecord[]>(exec);
  assert.equal(e?.state, "rejected");
  assert.match(e?.error?.message ?? "", /not in this device's exec allowlist/);
});

test("200 commands to one device execute in send order, each once", async () => {
  const file = join(fleet.dir.path, "order.lines");
  const sender = await CommandSender.open(await fleet.hubConnection());
  const sent: CommandRecord[] = [];
  for (let i = 0; i < 200; i++) {
    sent.push(await sender.send({ device: "g1", name: "test.append", args: { file, line: String(i) } }));
  }
  const { records, complete } = await waitForCommands(cmd.store, sent, 120_000);
  assert.ok(complete, `finished: ${records.filter((r) => r.state === "succeeded").length}/200`);
  assert.ok(records.every((r) => r.state === "succeeded"));
  assert.deepEqual(await fileLines(file), Array.from({ length: 200 }, (_, i) => String(i)));
});

test("config.reload is answered by the config module; handlers whose service is missing fail with a clear reason: mcu.<name>, wifi.scan", async () => {
  const run = async (args: string[]): Promise<CommandRecord> => {
    const r = await fleet.cli(["cmd", "send", "--device", "g2", ...args, "--wait", "--timeout", "60s", "--json"]);
    const [rec] = json<CommandRecord[]>(r);
    assert.ok(rec, r.stderr);
    return rec;
  };
  const reload = await run(["config.reload"]);
  assert.equal(reload.state, "succeeded", reload.error?.message);
  assert.ok(reload.result && typeof reload.result === "object" && "revision" in reload.result, JSON.stringify(reload.result));

  // g2 runs no bridge: MCU commands that reach MCUs are tested in test/src/mcu/.
  const mcu = await run(["mcu.blink", "--arg", "mcu=m1", "--arg", "ackTimeoutMs=500"]);
  assert.equal(mcu.state, "failed");
  assert.match(mcu.error?.message ?? "", /firmware bridge \(MCU m1\) is not running: nobody answers on local\.g2\.mcu\.m1\.cmd\.blink/);
  const noMcu = await run(["mcu.blink"]);
  assert.equal(noMcu.state, "rejected");
  assert.match(noMcu.error?.message ?? "", /mcu:/);

  const wifi = await run(["wifi.scan"]);
  // This CI machine has neither Wi-Fi nor NetworkManager; on one that has both the scan succeeds.
  assert.ok(wifi.state === "failed" || wifi.state === "succeeded", JSON.stringify(wifi));
  if (wifi.state === "failed") assert.match(wifi.error?.message ?? "", /nmcli|Wi-Fi/);
});

test("agent.restart: the result is stored, the agent exits for its service manager, and the command is not re-run after", async () => {
  const id = await cmd.send(["--device", "g2", "agent.restart"]);
  const agent = fleet.agent("g2");
  const code = await agent.proc.exited;
  assert.equal(code, 0);
  await fleet.startAgent("g2", { groups: ["lab"], env: TEST_HANDLERS, enroll: false });
  const rec = await cmd.terminal(id);
  assert.equal(rec.state, "succeeded", JSON.stringify(rec));
  const ping = await cmd.send(["--device", "g2", "ping"]);
  assert.equal((await cmd.terminal(ping)).state, "succeeded");
  assert.ok(fleet.agent("g2").proc.running, "the restarted agent did not restart again");
});

test("exec runs only allowlisted scripts (--allow-exec; config exec.allow is unit-tested)", async () => {
  const dir = fleet.dir.path;
  const script = join(dir, "hello.sh");
  const other = join(dir, "other.sh");
  await writeFile(script, '#!/bin/sh\necho "hello $1"\n', { mode: 0o755 });
  await writeFile(other, "#!/bin/sh\necho nope\n", { mode: 0o755 });
  await fleet.startAgent("x1", { env: TEST_HANDLERS, args: ["--allow-exec", script] });
  const ok = await fleet.cli(["cmd", "send", "--device", "x1", "exec", "--args", JSON.stringify({ path: script, args: ["fleet"] }), "--wait", "--timeout", "60s", "--json"]);
  assert.equal(ok.code, 0, ok.stderr);
  const [r] = json<CommandRecord[]>(ok);
  assert.equal((r?.result as { stdout?: string }).stdout, "hello fleet\n");
  const denied = await fleet.cli(["cmd", "send", "--device", "x1", "exec", "--arg", `path=${other}`, "--wait", "--timeout", "60s", "--json"]);
  const [d] = json<CommandRecord[]>(denied);
  assert.equal(d?.state, "rejected");
  assert.match(d?.error?.message ?? "", /not in this device's exec allowlist.*allowed: .*hello\.sh/);
});
