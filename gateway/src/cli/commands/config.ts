import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { CONFIG_KEYS, CONFIG_VALUE_MAX_BYTES, CanopyError, ErrorCode, checkConfigKey, checkSetting, layerName, parseConfigValue } from "@canopy/protocol";
import { ConfigService, layerFromFlags } from "../../config/operations.js";
import type { RenderResult } from "../../config/render.js";
import { withHub } from "../context.js";
import { printJson, table } from "../output.js";
import { registerRollout } from "./rollout.js";

interface LayerFlags {
  fleet?: boolean;
  group?: string;
  device?: string;
  json?: boolean;
}

function layerOptions(cmd: Command): Command {
  return cmd
    .option("--fleet", "the fleet-wide layer (lowest precedence)")
    .option("--group <group>", "a group's layer (overrides fleet)")
    .option("--device <device>", "one device's layer (overrides group and fleet)");
}

const show = (v: unknown): string => JSON.stringify(v);
const rendered = (r: RenderResult): string => `rendered for ${r.devices} device(s): ${r.written} changed, ${r.removed} removed`;

export function registerConfig(program: Command): void {
  const config = program
    .command("config")
    .description("layered remote config: fleet < group < device, rendered per device, applied by agents")
    .addHelpText(
      "after",
      `
Examples:
  canopy config set log.level info --fleet
  canopy config set log.level debug --group lab
  canopy config show --device pi-01
  canopy config rollout heartbeat.interval 2s --group lab --waves 10%,50%,100%`,
    );

  layerOptions(config.command("set <key> [value]"))
    .description("set a key in one layer (value parsed as JSON, else taken as a string) and render it")
    .option("--value-file <path>", "read the value from a file ('-' for stdin) instead of the argument")
    .option("--json", "print the result as JSON")
    .addHelpText("after", `\nExamples:\n  canopy config set log.level debug --group lab\n  canopy config set up.maxBytes 64MiB --device pi-01\n  canopy config set app.endpoints '["a","b"]' --fleet\n  canopy config set app.offset -5 --device pi-01\n  canopy config set app.table --value-file table.json --fleet\n\nCanopy's own keys (${Object.keys(CONFIG_KEYS).join(", ")}) are checked against their schema before anything is written; other namespaces (app.*) are free-form up to ${CONFIG_VALUE_MAX_BYTES / 1024} KiB.`)
    .action(async (key: string, raw: string | undefined, o: LayerFlags & { valueFile?: string }, cmd: Command) => {
      checkConfigKey(key);
      const layer = layerFromFlags(o);
      const value = parseConfigValue(await valueText(raw, o.valueFile));
      checkSetting(key, value);
      await withHub(cmd, async (nc) => {
        const svc = await ConfigService.open(nc);
        if (layer.kind === "device" && (await svc.fleet.records([layer.device])).length === 0) {
          process.stderr.write(`note: device ${layer.device} is not enrolled; the value applies once it is\n`);
        }
        const res = await svc.set(layer, key, value);
        if (o.json) printJson({ key, layer: layerName(layer), value, ...res });
        else process.stdout.write(`set ${layerName(layer)} ${key} = ${show(value)} (revision ${res.revision}); ${rendered(res.render)}\n`);
      });
    });

  layerOptions(config.command("unset <key>"))
    .description("remove a key from one layer (lower layers, or the agent default, take over)")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  canopy config unset log.level --device pi-01")
    .action(async (key: string, o: LayerFlags, cmd: Command) => {
      checkConfigKey(key);
      const layer = layerFromFlags(o);
      await withHub(cmd, async (nc) => {
        const res = await (await ConfigService.open(nc)).unset(layer, key);
        if (o.json) printJson({ key, layer: layerName(layer), ...res });
        else process.stdout.write(`${res.removed ? "unset" : "was not set:"} ${layerName(layer)} ${key}; ${rendered(res.render)}\n`);
      });
    });

  layerOptions(config.command("get <key>"))
    .description("the value of a key in one layer (not the effective value: see 'config show')")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy config get log.level --group lab --json")
    .action(async (key: string, o: LayerFlags, cmd: Command) => {
      checkConfigKey(key);
      const layer = layerFromFlags(o);
      await withHub(cmd, async (nc) => {
        const v = await (await ConfigService.open(nc)).layers.get(layer, key);
        if (!v) throw new CanopyError(ErrorCode.NotFound, `${key} is not set in ${layerName(layer)}`);
        if (o.json) printJson({ key, layer: layerName(layer), ...v });
        else process.stdout.write(`${show(v.value)}\n`);
      });
    });

  config
    .command("show")
    .description("a device's effective config: value, source layer, hub revision, revision the device applied")
    .requiredOption("--device <device>", "the device")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy config show --device pi-01\n  canopy config show --device pi-01 --json")
    .action(async (o: { device: string; json?: boolean }, cmd: Command) => {
      const layer = layerFromFlags({ device: o.device });
      await withHub(cmd, async (nc) => {
        const view = await (await ConfigService.open(nc)).show((layer as { device: string }).device);
        if (view.failed > 0) process.exitCode = 1;
        if (o.json) return printJson(view);
        const rows = view.keys.map((k) => [
          k.key,
          show(k.value),
          k.source,
          k.revision === null ? "rollout" : String(k.revision),
          k.status === "failed" ? `FAILED: ${k.applied?.error ?? ""} (runs ${k.applied?.appliedRevision === undefined ? "the default" : `rev ${k.applied.appliedRevision}`})` : k.status,
        ]);
        process.stdout.write(table(["KEY", "VALUE", "SOURCE", "REV", "STATUS"], rows));
        const applied = view.keys.length - view.failed - view.pending;
        process.stdout.write(
          `${view.device} (${view.online ? "online" : "offline"}, groups: ${view.groups.join(",") || "-"}): ${applied}/${view.keys.length} applied, ${view.pending} pending, ${view.failed} failed; applied revision ${view.appliedRevision ?? "-"}\n`,
        );
        if (view.failed > 0) process.stderr.write(`error: ${view.device} refused ${view.failed} key(s); fix or unset them\n`);
      });
    });

  layerOptions(config.command("history <key>"))
    .description("revisions of a key in one layer (64 kept), oldest first")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy config history log.level --fleet")
    .action(async (key: string, o: LayerFlags, cmd: Command) => {
      checkConfigKey(key);
      const layer = layerFromFlags(o);
      await withHub(cmd, async (nc) => {
        const h = await (await ConfigService.open(nc)).layers.history(layer, key);
        if (o.json) return printJson(h);
        const rows = h.map((e) => [String(e.revision), new Date(e.at).toISOString(), e.operation, e.operation === "set" ? show(e.value) : "-"]);
        process.stdout.write(table(["REVISION", "TIME", "OP", "VALUE"], rows));
      });
    });

  layerOptions(config.command("revert <key>"))
    .description("set a key in one layer back to what it was at an earlier revision (see 'config history')")
    .requiredOption("--to <revision>", "a revision from 'canopy config history'")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  canopy config revert log.level --fleet --to 12")
    .action(async (key: string, o: LayerFlags & { to: string }, cmd: Command) => {
      checkConfigKey(key);
      const layer = layerFromFlags(o);
      const to = Number(o.to);
      if (!Number.isInteger(to) || to <= 0) throw new CanopyError(ErrorCode.InvalidInput, `--to must be a revision number, got ${JSON.stringify(o.to)}`);
      await withHub(cmd, async (nc) => {
        const res = await (await ConfigService.open(nc)).revert(layer, key, to);
        const what = res.operation === "set" ? `= ${show(res.value)}` : "(unset)";
        if (o.json) printJson({ key, layer: layerName(layer), to, ...res });
        else process.stdout.write(`reverted ${layerName(layer)} ${key} to revision ${to} ${what}; ${rendered(res.render)}\n`);
      });
    });

  registerRollout(program, config);
}

/** The value from the argument or `--value-file` (exactly one); the size caps apply after parsing. */
async function valueText(raw: string | undefined, file: string | undefined): Promise<string> {
  if ((raw === undefined) === (file === undefined)) throw new CanopyError(ErrorCode.InvalidInput, "give the value as an argument or with --value-file, not both");
  if (raw !== undefined) return raw;
  const text = file === "-" ? await readStdin() : await readFile(file as string, "utf8").catch((err: Error) => {
    throw new CanopyError(ErrorCode.InvalidInput, `--value-file ${file}: ${err.message}`);
  });
  return text.replace(/\n$/, "");
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
