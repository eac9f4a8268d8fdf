import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { Fleet } from "../harness/index.js";

/**
 * The agent under a fake service manager: a small Python receiver on a unix datagram socket plays
 * systemd's NOTIFY_SOCKET (node has no unix datagram sockets), records every datagram with the time it
 * arrived, and closes the file descriptors that come with it as systemd does, which completes
 * systemd-notify's BARRIER=1.
 */
const RECEIVER = `
import socket, sys, os, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("LISTENING"), flush=True)
while True:
    msg, fds, _, _ = socket.recv_fds(s, 65536, 16)
    for fd in fds:
        os.close(fd)
    print(json.dumps(msg.decode()), flush=True)
`;
class FakeNotifySocket {
  readonly path: string;
  readonly messages: { at: number; text: string }[] = [];
  private readonly proc: ChildProcess;

  constructor(dir: string) {
    this.path = join(dir, "notify.sock");
    this.proc = spawn("python3", ["-c", RECEIVER, this.path], { stdio: ["ignore", "pipe", "inherit"] });
    let rest = "";
    this.proc.stdout?.on("data", (d: Buffer) => {
      const lines = (rest + d.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) this.messages.push({ at: Date.now(), text: JSON.parse(line) as string });
    });
  }

  count(field: string): number {
    return this.messages.filter((m) => m.text.startsWith(field)).length;
  }

  first(field: string): { at: number; text: string } | undefined {
    return this.messages.find((m) => m.text.startsWith(field));
  }

  stop(): void {
    this.proc.kill("SIGKILL");
  }
}

let fleet: Fleet;
let sock: FakeNotifySocket;
before(async () => {
  fleet = await Fleet.start();
  sock = new FakeNotifySocket(fleet.dir.path);
  await waitFor(() => sock.first("LISTENING"), { timeoutMs: 10_000, what: "fake notify socket" });
});
after(async () => {
  sock?.stop();
  await fleet?.stop();
});

test("sd_notify: READY=1 after the leaf is up, WATCHDOG=1 keeps coming, a wedged service loop stops it", async () => {
  const env = { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "600000", CANOPY_TEST_HOOKS: "1" };
  const agent = await fleet.startAgent("sd1", { env });
  const readyLineAt = Date.now();
  const ready = await waitFor(() => sock.first("READY=1"), { timeoutMs: 10_000, what: `READY=1 on the notify socket\n${agent.proc.output.join("\n")}\n${JSON.stringify(sock.messages)}` });
  assert.match(ready.text, /STATUS=device sd1 running/);
  // The agent printed agent-ready (leaf up, modules started) before READY=1 was sent.
  assert.ok(ready.at >= readyLineAt - 50, "READY=1 came before the agent was up");
  const leaf = await fleet.leafConnection("sd1");
  await leaf.flush();

  // WATCHDOG=1 every ~300 ms (half of 600 ms): at least 8 more within 4 s.
  const before = sock.count("WATCHDOG=1");
  await waitFor(() => sock.count("WATCHDOG=1") >= before + 8, { timeoutMs: 8_000, what: "8 watchdog pings" });
  const online = await waitFor(
    async () => {
      const r = await fleet.cli(["devices", "--json"]);
      const list = JSON.parse(r.stdout) as { id: string; online: boolean }[];
      return list.find((d) => d.id === "sd1" && d.online);
    },
    { timeoutMs: 15_000, what: "sd1 online" },
  );
  assert.ok(online);

  // Wedge the service loop: the pings stop (nothing for 3 s = 10 intervals) while the process lives.
  process.kill(agent.proc.pid, "SIGUSR2");
  await agent.proc.waitForOutput(/wedging the service loop/, 5_000);
  await new Promise((r) => setTimeout(r, 700)); // a ping already in flight may still land
  const frozen = sock.count("WATCHDOG=1");
  await new Promise((r) => setTimeout(r, 3_000));
  assert.equal(sock.count("WATCHDOG=1"), frozen, "watchdog pings kept coming from a wedged loop");
  assert.ok(agent.proc.running);

  await agent.proc.stop();
  await waitFor(() => sock.count("STOPPING=1") === 1, { timeoutMs: 5_000, what: "STOPPING=1 on shutdown" });
});
