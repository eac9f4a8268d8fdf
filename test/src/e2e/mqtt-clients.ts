import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TempDir } from "../harness/index.js";

/** test/fixtures/mqtt: payloads written from the firmwares' documented formats, and replay.py. */
export const FIXTURES = fileURLToPath(new URL("../../fixtures/mqtt/", import.meta.url));

export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
  events: Array<Record<string, unknown>>;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<ClientRun> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      const events = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, events });
    });
  });
}

/** `mosquitto_pub` (Debian mosquitto-clients): one PUBLISH from client `id`, payload from a fixture file or text. */
export function mosquittoPub(port: number, o: { id: string; topic: string; file?: string; message?: string; qos?: 0 | 1; retain?: boolean; username?: string; password?: string }): Promise<ClientRun> {
  const args = ["-h", "127.0.0.1", "-p", String(port), "-i", o.id, "-q", String(o.qos ?? 1), "-t", o.topic];
  if (o.file) args.push("-f", join(FIXTURES, o.file));
  else args.push("-m", o.message ?? "");
  if (o.retain) args.push("-r");
  if (o.username) args.push("-u", o.username, "-P", o.password ?? "");
  return run("mosquitto_pub", args, 20_000);
}

/** Python paho-mqtt (Debian python3-paho-mqtt) running a replay script (see fixtures/mqtt/replay.py). */
export async function pahoReplay(dir: TempDir, port: number, name: string, script: Record<string, unknown>, timeoutMs = 60_000): Promise<ClientRun> {
  const path = join(dir.path, `${name}.json`);
  await writeFile(path, JSON.stringify(script));
  // Debian's interpreter: python3-paho-mqtt is installed for it (a pyenv python3 on PATH would not see it).
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  return run(python, [join(FIXTURES, "replay.py"), "127.0.0.1", String(port), path], timeoutMs);
}
