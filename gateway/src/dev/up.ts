import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Backoff, drainOrClose, errorMessage, requireNatsServer, sleep } from "@canopy/protocol";
import { connectHub } from "../nats.js";
import { provisionWhenReady } from "../hub/provision.js";
import { defaultHubLimits } from "../hub/limits.js";
import { freeLoopbackPort, portOr, startDevHubs } from "./hubs.js";
import type { HubServer } from "../hub/server.js";
import { ConsoleServer, DEFAULT_CONSOLE_PORT } from "../http/server.js";
import { Gateway } from "../service/gateway.js";
import { Registry } from "../registry/devices.js";
import { IdentityService } from "../identity/service.js";
import { requestMint } from "../identity/client.js";
import { writeSecret } from "../identity/init.js";
import { writeContext } from "../cli/contexts/store.js";
import { Children } from "./children.js";
import type { Logger } from "../logging.js";

export interface DevUpOptions {
  devices: number;
  /** Hub nodes: 1, or a cluster of 3 (`--hub-nodes 3`). */
  hubNodes?: number;
  data: string;
  bin: string;
  signal: AbortSignal;
  log: Logger;
  /** Print child process log lines (default: only warnings and errors). */
  verbose: boolean;
  /** Any free ports instead of the usual 4222/7422/8222 (tests, several demos side by side). */
  freePorts: boolean;
}

/**
 * The embedded demo: a hub (nats-server + gateway) and N enrolled devices, each a real `canopy agent`
 * with its own leaf nats-server, all on loopback with data under DATA. Runs until the signal aborts,
 * then stops everything it started.
 */
export async function devUp(o: DevUpOptions): Promise<void> {
  const data = resolve(o.data);
  await requireNatsServer();
  await mkdir(data, { recursive: true });
  const hubs = await startDevHubs(data, o.hubNodes ?? 1, o.freePorts, o.log);
  const hub = hubs.servers[0] as HubServer;
  const target = { server: hubs.clientUrls.join(","), creds: hub.identity.adminCreds };
  const nc = await connectHub(target, { name: "canopy-dev", daemon: true });
  await provisionWhenReady(nc, hubs.replicas, o.log, o.signal, defaultHubLimits(hub.maxFileStore));
  const gateway = new Gateway(nc, o.log.child({ component: "gateway" }));
  await gateway.start();
  const identity = new IdentityService(nc, hub.identity, { hubUrl: hub.clientUrl, leafUrls: hubs.leafUrls }, o.log.child({ component: "identity" }));
  await identity.start();
  await writeContext("dev", target);
  const clog = o.log.child({ component: "console" });
  const web = await ConsoleServer.start(nc, { data: join(data, "hub"), host: "127.0.0.1", port: Math.max(0, await portOr(DEFAULT_CONSOLE_PORT, o.freePorts)) }, clog).catch(
    (err: Error) => void clog.warn({ err: err.message }, "console not started"),
  );
  const children = new Children(o.bin, (name, line) => {
    if (o.verbose || /"level":(40|50|60)/.test(line)) process.stderr.write(`[${name}] ${line}\n`);
  });
  try {
    const registry = await Registry.open(nc);
    const ids = Array.from({ length: o.devices }, (_, i) => `dev-${i + 1}`);
    // Demo MCUs on dev-1: one over a socat pty pair (binary protocol), one over MQTT.
    const mcu = await demoMcuLinks(data, children);
    const agents = await Promise.all(
      ids.map(async (id, i) => {
        // Each device enrolls with its own bundle (new credentials on every start of the demo).
        const bundle = join(data, "devices", `${id}.bundle.json`);
        await mkdir(join(data, "devices"), { recursive: true });
        // A fresh hub cluster still elects stream leaders for a few seconds after provisioning.
        const backoff = new Backoff({ initialMs: 1_000, maxMs: 5_000 });
        for (let attempt = 1; ; attempt++) {
          try {
            await registry.enroll(id, i % 2 === 0 ? ["lab"] : ["field"]);
            await writeSecret(bundle, JSON.stringify((await requestMint(nc, id)).bundle));
            break;
          } catch (err) {
            if (attempt >= 8 || o.signal.aborted) throw err;
            o.log.warn({ device: id, err: errorMessage(err), attempt }, "enrolling a demo device failed; retrying");
            await sleep(backoff.next(), o.signal);
          }
        }
        const bridgeArgs = i === 0 && mcu ? ["--bridge-serial", mcu.bridgeTty, "--bridge-mqtt", `127.0.0.1:${mcu.mqttPort}`, "--bridge-mqtt-anonymous"] : [];
        const child = children.start(id, [
          "agent", "--bundle", bundle, "--data", join(data, "devices", id), "--port", "-1", "--heartbeat", "2s",
          ...bridgeArgs,
        ]);
        const ready = JSON.parse(await children.waitForLine(child, /"event":"agent-ready"/)) as { leaf: string };
        return { id, leaf: ready.leaf, group: i % 2 === 0 ? "lab" : "field" };
      }),
    );
    if (mcu) {
      children.start("mcu-serial", ["sim", "mcu", "--id", "mcu-serial", "--serial", mcu.simTty, "--binary", "--rate", "1"]);
      // The bridge's MQTT listener starts with the agent; the simulator retries until it is up.
      children.start("mcu-mqtt", ["sim", "mcu", "--id", "mcu-wifi", "--mqtt", `127.0.0.1:${mcu.mqttPort}`, "--rate", "1"]);
    }
    const env = `export CANOPY_SERVER=${hubs.clientUrls.join(",")} CANOPY_CREDS=${hub.identity.adminCreds}   # or nothing: context "dev" if none was selected`;
    // Hints that work from any directory: absolute paths, and an alias when `canopy` is not on PATH.
    const alias = `alias canopy=${JSON.stringify(`${process.execPath} ${resolve(o.bin)}`)}`;
    process.stdout.write(
      [
        "",
        "Canopy demo is up (Ctrl-C stops everything).",
        "",
        ...hubs.servers.map((h, i) => `  ${(hubs.servers.length > 1 ? `hub-${i + 1}` : "hub").padEnd(10)} ${h.clientUrl}   leafnodes ${h.leafUrl}   monitoring ${h.httpUrl}`),
        ...(hubs.servers.length > 1 ? [`             a ${hubs.servers.length}-node cluster: streams and KV buckets at ${hubs.replicas} replicas`] : []),
        `  gateway    in-process (id ${gateway.id})`,
        ...(web ? [`  console    ${web.loginUrl()}`] : []),
        ...agents.map((a) => `  ${a.id.padEnd(10)} agent + leaf nats-server at ${a.leaf}   group ${a.group}   data ${resolve(data, "devices", a.id)}`),
        "",
        "Try, in another terminal (from any directory):",
        `  ${alias}   # unless canopy is on your PATH`,
        `  ${env}`,
        "  canopy devices",
        `  canopy pub --device ${agents[0]?.id ?? "dev-1"} tlm.temp 21.5        # a device app publishing on ${agents[0]?.id ?? "dev-1"}'s leaf`,
        "  canopy tail --follow",
        ...(mcu ? ["  canopy mcu list                             # dev-1 has a serial MCU (socat pty) and an MQTT MCU"] : []),
        ...(mcu ? ["", "  WARNING: dev-1's MQTT listener lets anonymous MCUs in (demo only). Real devices give each MCU", "  its own credentials: canopy mcu creds --device dev-1 --mcu <id>"] : []),
        "  canopy backlog",
        "  canopy doctor",
        "",
      ].join("\n") + "\n",
    );
    await new Promise<void>((r) => (o.signal.aborted ? r() : o.signal.addEventListener("abort", () => r(), { once: true })));
    for (const h of hubs.servers) h.supervisor.stopRestarting();
    process.stdout.write("stopping the demo...\n");
  } finally {
    await children.stopAll();
    identity.stop();
    await web?.stop();
    await gateway.stop();
    await drainOrClose(nc);
    await Promise.all(hubs.servers.map((h) => h.supervisor.stop()));
  }
}

/** A socat pty pair for the demo's serial MCU and a free port for the bridge's MQTT listener. */
async function demoMcuLinks(data: string, children: Children): Promise<{ bridgeTty: string; simTty: string; mqttPort: number } | undefined> {
  const bridgeTty = join(data, "tty-bridge");
  const simTty = join(data, "tty-mcu");
  const socat = children.spawnRaw("socat", ["pty,raw,echo=0,link=" + bridgeTty, "pty,raw,echo=0,link=" + simTty]);
  if (!socat) return undefined;
  const { existsSync } = await import("node:fs");
  for (let i = 0; i < 50 && !(existsSync(bridgeTty) && existsSync(simTty)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!existsSync(simTty)) return undefined;
  const mqttPort = await freeLoopbackPort();
  return { bridgeTty, simTty, mqttPort };
}
