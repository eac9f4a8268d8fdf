import type { Command } from "commander";
import { CanopyError, ErrorCode, checkId, checkVersion, errorMessage, parseDuration } from "@canopy/protocol";
import { parseWaves } from "../../rollout/model.js";
import { FirmwareRolloutStore, parseGate, type FirmwareRollout } from "../../firmware/rollout-model.js";
import { FirmwareStore } from "../../firmware/store.js";
import { Registry } from "../../registry/devices.js";
import { checkSelector, resolveTargets, type TargetSelector } from "../../commands/index.js";
import { withHub } from "../context.js";
import { age, printJson, table } from "../output.js";
import { watchOption, watched, type WatchFlags } from "../watch.js";
import { describeWaves, followRollout, withPending } from "./rollout-view.js";

interface Flags {
  board?: string;
  fwVersion?: string;
  group?: string;
  device?: string;
  where?: string;
  waves: string;
  gate: string;
  maxFailures: string;
  healthTimeout: string;
  confirmWithin: string;
  wait?: boolean;
  json?: boolean;
}

/** `canopy firmware rollout …`: the config rollouts' wave engine, with MCUs as units. */
export function registerFirmwareRollout(fw: Command): void {
  const ro = fw
    .command("rollout")
    .description("flash a version to a board's MCUs in waves; each wave starts only after the previous one confirmed and stayed online")
    .option("--board <board>", "the board whose MCUs get the image")
    .option("--fw-version <version>", "the stored version to roll out (`--version` is canopy's own)")
    .option("--group <group>", "only MCUs of devices in this group (default: the whole fleet)")
    .option("--device <id>", "only MCUs of this device")
    .option("--where <cel>", "only MCUs of devices whose live facts match (as canopy query --where)")
    .option("--waves <list>", "cumulative share of the MCUs per wave", "10%,50%,100%")
    .option("--gate <gate>", "health gate: the MCU confirmed the new version and stayed online this long", "confirmed-and-online:1m")
    .option("--max-failures <n>", "failed MCUs tolerated per wave before the rollout halts and rolls the wave back", "0")
    .option("--health-timeout <duration>", "how long a wave's MCUs have to pass the gate", "15m")
    .option("--confirm-within <duration>", "the new image's trial boot window (bootloader reverts after it)", "15s")
    .option("--wait", "follow the rollout until it completes (exit 0) or halts (exit 1)")
    .option("--json", "print the rollout record as JSON")
    .addHelpText(
      "after",
      `
Examples:
  canopy firmware rollout --board rp2040 --fw-version 1.4.0 --group lab --waves 1%,10%,100% --gate confirmed-and-online:5m
  canopy firmware rollout --board uno --fw-version 2.0.1 --where 'labels.site == "berlin"' --max-failures 1 --wait
  canopy firmware rollout status
  canopy firmware rollout status f1a2b3c --json
  canopy firmware rollout abort f1a2b3c`,
    )
    .action(async (o: Flags, cmd: Command) => {
      if (!o.board || !o.fwVersion) throw new CanopyError(ErrorCode.InvalidInput, "firmware rollout needs --board and --fw-version (or: status, abort)");
      const board = checkId(o.board, "board");
      const version = checkVersion(o.fwVersion);
      const sel: TargetSelector = { device: o.device, group: o.group, where: o.where };
      const fleetWide = o.device === undefined && o.group === undefined && o.where === undefined;
      if (!fleetWide) checkSelector(sel);
      let waves: number[];
      try {
        waves = parseWaves(o.waves);
      } catch (err) {
        throw new CanopyError(ErrorCode.InvalidInput, `--waves: ${errorMessage(err)}`);
      }
      const gate = parseGate(o.gate);
      const maxFailures = Number(o.maxFailures);
      if (!Number.isInteger(maxFailures) || maxFailures < 0) throw new CanopyError(ErrorCode.InvalidInput, `--max-failures must be a whole number ≥ 0, got ${JSON.stringify(o.maxFailures)}`);
      const healthTimeoutMs = parseDuration(o.healthTimeout, "--health-timeout");
      const confirmWithinMs = parseDuration(o.confirmWithin, "--confirm-within");
      if (confirmWithinMs < 500 || confirmWithinMs > 600_000) throw new CanopyError(ErrorCode.InvalidInput, "--confirm-within must be between 500ms and 10m");
      await withHub(cmd, async (nc) => {
        const image = await (await FirmwareStore.open(nc)).get(board, version);
        if (!image) throw new CanopyError(ErrorCode.NotFound, `no firmware ${board}@${version} in the store (canopy firmware list)`);
        const devices = fleetWide ? undefined : new Set(await resolveTargets(nc, sel));
        const units: Record<string, string> = {};
        for (const v of await (await Registry.open(nc)).view()) {
          if (devices && !devices.has(v.record.id)) continue;
          for (const m of v.status?.mcus ?? []) if (m.board === board && m.firmware !== version) units[`${v.record.id}/${m.id}`] = m.firmware;
        }
        const selector = o.group !== undefined ? `group ${o.group}` : o.device !== undefined ? `device ${o.device}` : o.where !== undefined ? `where ${o.where}` : "the whole fleet";
        const store = await FirmwareRolloutStore.open(nc);
        const r = await store.create({ board, version, sha256: image.sha256, selector, units, waves, gate, confirmWithinMs, healthTimeoutMs, maxFailures });
        if (o.json && !o.wait) return printJson(r);
        if (!o.json) {
          process.stdout.write(`firmware rollout ${r.id}: ${board}@${version} to ${Object.keys(units).length} MCU(s) of ${selector} in ${r.waves.length} wave(s)\n`);
          r.waves.forEach((w, i) => process.stdout.write(`  wave ${i + 1} (${w.percent}%): ${w.devices.join(", ")}\n`));
        }
        if (!o.wait) return void process.stdout.write(`follow it with: canopy firmware rollout status ${r.id}\n`);
        const done = await followRollout((x) => store.get(x), r.id, o.json === true, "confirmed");
        if (o.json) printJson(withPending(done));
        if (done.state !== "completed") process.exitCode = 1;
      });
    });

  watchOption(ro.command("status [id]"))
    .description("all firmware rollouts (newest first), or one rollout's waves and per-MCU health")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy firmware rollout status\n  canopy firmware rollout status f1a2b3c --json")
    .action(async (id: string | undefined, own: WatchFlags, cmd: Command) => {
      if (id !== undefined) checkId(id, "id");
      const o = withParentJson(own, cmd);
      await watched(cmd, o, async (nc, json) => {
        const store = await FirmwareRolloutStore.open(nc);
        if (id === undefined) {
          const all = await store.list();
          if (o.json) return json(all.map(withPending));
          const rows = all.map((r) => [r.id, `${r.board}@${r.version}`, r.selector, r.state, `${Math.min(r.current + 1, r.waves.length)}/${r.waves.length}`, age(Date.now() - r.createdAt), r.reason ?? ""]);
          process.stdout.write(table(["ID", "FIRMWARE", "TARGETS", "STATE", "WAVE", "AGE", "REASON"], rows));
          return;
        }
        const s = await store.get(id);
        if (!s) throw new CanopyError(ErrorCode.NotFound, `no firmware rollout ${id}`);
        if (o.json) return json(withPending(s.rollout));
        process.stdout.write(describe(s.rollout));
      });
    });

  ro.command("abort <id>")
    .description("halt a firmware rollout: pending flashes are cancelled, MCUs that took the new image get the previous one back")
    .option("--json", "print the rollout record as JSON")
    .addHelpText("after", "\nExamples:\n  canopy firmware rollout abort f1a2b3c")
    .action(async (id: string, own: { json?: boolean }, cmd: Command) => {
      checkId(id, "id");
      const o = withParentJson(own, cmd);
      await withHub(cmd, async (nc) => {
        const r = await (await FirmwareRolloutStore.open(nc)).requestAbort(id);
        if (o.json) return printJson(withPending(r));
        process.stdout.write(`abort requested for ${id}; the gateway halts it and flashes back (see: canopy firmware rollout status ${id})\n`);
      });
    });
}

/** `rollout` has its own --json, which commander gives the parent when it follows `status`/`abort`. */
function withParentJson<T extends { json?: boolean }>(own: T, cmd: Command): T {
  return (cmd.optsWithGlobals() as { json?: boolean }).json === true ? { ...own, json: true } : own;
}

function describe(r: FirmwareRollout): string {
  return [
    `firmware rollout ${r.id}: ${r.board}@${r.version} to ${r.selector}`,
    `state: ${r.state}${r.reason ? ` — ${r.reason}` : ""}`,
    `gate: confirmed and online for ${r.gate.soakMs / 1000}s; health timeout ${r.options.healthTimeoutMs / 1000}s; max failures ${r.options.maxFailures}; trial boot ${r.confirmWithinMs / 1000}s`,
    ...describeWaves(r, "confirmed", (unit) => (r.previous[unit] ? ` (was ${r.previous[unit]})` : "")),
  ].join("\n") + "\n";
}
