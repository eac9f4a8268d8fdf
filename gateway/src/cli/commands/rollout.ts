import type { Command } from "commander";
import { CanopyError, ErrorCode, checkConfigKey, checkId, checkSetting, errorMessage, parseConfigValue, parseDuration } from "@canopy/protocol";
import { ConfigService } from "../../config/operations.js";
import { parseWaves, type Rollout } from "../../config/rollout-model.js";
import { RolloutStore } from "../../config/rollouts.js";
import { withHub } from "../context.js";
import { age, printJson, table } from "../output.js";
import { watchOption, watched, type WatchFlags } from "../watch.js";
import { describeWaves, followRollout, withPending } from "./rollout-view.js";

interface RolloutFlags {
  group: string;
  waves: string;
  healthTimeout: string;
  maxFailures: string;
  offlineFails?: boolean;
  soak: string;
  wait?: boolean;
  json?: boolean;
}

/** `canopy config rollout …` and `canopy rollout status|abort`. */
export function registerRollout(program: Command, config: Command): void {
  config
    .command("rollout <key> <value>")
    .description("change a key for a group in waves; each wave starts only after the previous one applied it and stayed healthy")
    .requiredOption("--group <group>", "the group to roll out to (its layer gets the value when the rollout completes)")
    .option("--waves <list>", "cumulative share of the group per wave", "10%,50%,100%")
    .option("--health-timeout <duration>", "how long a wave's online devices have to report the new revision applied", "60s")
    .option("--max-failures <n>", "failed devices tolerated before the rollout halts and rolls back", "0")
    .option("--offline-fails", "count devices that are offline as failures (default: pending)")
    .option("--soak <duration>", "after a wave applied, its devices must keep reporting this long (one that goes silent fails the wave) before the next wave starts", "0s")
    .option("--wait", "follow the rollout until it completes (exit 0) or halts (exit 1)")
    .option("--json", "print the rollout record as JSON")
    .addHelpText(
      "after",
      `
Examples:
  canopy config rollout log.level debug --group lab
  canopy config rollout heartbeat.interval 2s --group lab --waves 25%,100% --health-timeout 2m --max-failures 1 --wait
  canopy rollout status`,
    )
    .action(async (key: string, raw: string, o: RolloutFlags, cmd: Command) => {
      checkConfigKey(key);
      const group = checkId(o.group, "group id");
      let waves: number[];
      try {
        waves = parseWaves(o.waves);
      } catch (err) {
        throw new CanopyError(ErrorCode.InvalidInput, `--waves: ${errorMessage(err)}`);
      }
      const healthTimeoutMs = parseDuration(o.healthTimeout, "--health-timeout");
      const soakMs = parseDuration(o.soak, "--soak");
      const maxFailures = Number(o.maxFailures);
      if (!Number.isInteger(maxFailures) || maxFailures < 0) {
        throw new CanopyError(ErrorCode.InvalidInput, `--max-failures must be a whole number ≥ 0, got ${JSON.stringify(o.maxFailures)}`);
      }
      const value = parseConfigValue(raw);
      checkSetting(key, value);
      await withHub(cmd, async (nc) => {
        const svc = await ConfigService.open(nc);
        const members = (await svc.fleet.members(group)).map((r) => r.id);
        const prev = await svc.layers.get({ kind: "group", group }, key);
        const r = await svc.rollouts.create({
          key, value, group, devices: members, waves, healthTimeoutMs, maxFailures, soakMs,
          offlineFails: o.offlineFails === true,
          previous: prev ? { set: true, value: prev.value } : { set: false },
        });
        if (o.json && !o.wait) return printJson(r);
        if (!o.json) {
          process.stdout.write(`rollout ${r.id}: ${key} = ${JSON.stringify(value)} to group ${group} in ${r.waves.length} wave(s)\n`);
          r.waves.forEach((w, i) => process.stdout.write(`  wave ${i + 1} (${w.percent}%): ${w.devices.join(", ")}\n`));
        }
        if (!o.wait) {
          process.stdout.write(`follow it with: canopy rollout status ${r.id}\n`);
          return;
        }
        const done = await followRollout((x) => svc.rollouts.get(x), r.id, o.json === true);
        if (o.json) printJson(done);
        if (done.state !== "completed") process.exitCode = 1;
      });
    });

  const rollout = program.command("rollout").description("staged config rollouts: progress, health, abort");
  watchOption(rollout.command("status [id]"))
    .description("all rollouts (newest first), or one rollout's waves and per-device health")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy rollout status\n  canopy rollout status r1a2b3c --watch\n  canopy rollout status r1a2b3c --json")
    .action(async (id: string | undefined, o: WatchFlags, cmd: Command) => {
      if (id !== undefined) checkId(id, "id");
      await watched(cmd, o, async (nc, json) => {
        const store = await RolloutStore.open(nc);
        if (id === undefined) {
          const all = await store.list();
          if (o.json) return json(all.map(withPending));
          const rows = all.map((r) => [r.id, r.key, r.group, JSON.stringify(r.value), r.state, `${Math.min(r.current + 1, r.waves.length)}/${r.waves.length}`, age(Date.now() - r.createdAt), r.reason ?? ""]);
          process.stdout.write(table(["ID", "KEY", "GROUP", "VALUE", "STATE", "WAVE", "AGE", "REASON"], rows));
          return;
        }
        const s = await store.get(id);
        if (!s) throw new CanopyError(ErrorCode.NotFound, `no rollout ${id}`);
        if (o.json) return json(withPending(s.rollout));
        process.stdout.write(describe(s.rollout));
      });
    });

  rollout
    .command("abort <id>")
    .description("halt a rollout and restore the previous value on the devices it already changed")
    .option("--json", "print the rollout record as JSON")
    .addHelpText("after", "\nExamples:\n  canopy rollout abort r1a2b3c")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      checkId(id, "id");
      await withHub(cmd, async (nc) => {
        const store = await RolloutStore.open(nc);
        await store.requestAbort(id);
        const after = await store.get(id);
        if (o.json && after) return printJson(withPending(after.rollout));
        process.stdout.write(`abort requested for ${id}; the gateway halts it and rolls back (see: canopy rollout status ${id})\n`);
      });
    });
}

function describe(r: Rollout): string {
  const lines = [
    `rollout ${r.id}: ${r.key} = ${JSON.stringify(r.value)} to group ${r.group} (previous: ${r.previous.set ? JSON.stringify(r.previous.value) : "not set"})`,
    `state: ${r.state}${r.reason ? ` — ${r.reason}` : ""}`,
    `options: health timeout ${r.options.healthTimeoutMs / 1000}s, max failures ${r.options.maxFailures}, offline ${r.options.offlineFails ? "fails" : "pending"}, soak ${r.options.soakMs / 1000}s`,
  ];
  lines.push(...describeWaves(r));
  return lines.join("\n") + "\n";
}
