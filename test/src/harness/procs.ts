import { readFile, readdir } from "node:fs/promises";

/** Direct children of a process, from /proc (Linux). */
export async function childPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, "utf8").catch(() => "");
    out.push(...text.split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

export async function processName(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
}

/** The nats-server a daemon (agent or hub) started as its child. */
export async function natsServerChild(pid: number): Promise<number | undefined> {
  for (const c of await childPids(pid)) if ((await processName(c)) === "nats-server") return c;
  return undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
