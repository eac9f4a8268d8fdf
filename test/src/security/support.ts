import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { EnrollBundle } from "@canopy/protocol";
import type { Fleet, LeafAuth } from "../harness/index.js";

/** The bundle `fleet.enroll(device)` wrote: the device's creds, CA, client certificate and key. */
export async function readBundle(fleet: Fleet, device: string): Promise<EnrollBundle> {
  return JSON.parse(await readFile(fleet.bundlePath(device), "utf8")) as EnrollBundle;
}

/** A device's enrollment as files, for a hand-started nats-server leaf (`TestServer.leaf`). */
export async function leafAuthFromBundle(b: EnrollBundle, dir: string): Promise<LeafAuth> {
  await mkdir(dir, { recursive: true });
  const f = (name: string): string => join(dir, name);
  await writeFile(f("device.creds"), b.creds, { mode: 0o600 });
  await writeFile(f("ca.pem"), b.ca ?? "");
  await writeFile(f("cert.pem"), b.cert ?? "");
  await writeFile(f("key.pem"), b.key ?? "", { mode: 0o600 });
  return { credentialsFile: f("device.creds"), tls: { caFile: f("ca.pem"), certFile: f("cert.pem"), keyFile: f("key.pem") }, userKey: "" };
}

/** Names (server_name) of the leaf nodes connected to the hub, from its monitoring endpoint. */
export async function hubLeafNames(fleet: Fleet): Promise<string[]> {
  const res = await fetch(`${fleet.hub.http}/leafz`);
  const body = (await res.json()) as { leafs?: { name?: string }[] };
  return (body.leafs ?? []).map((l) => l.name ?? "");
}
