import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { CanopyError, CustomTopicRule, ErrorCode, MQTT_PROFILES, checkId, isValidTokenPath, type CustomTopicRule as Rule } from "@canopy/protocol";
import { MqttProtocolError } from "../errors.js";
import { ProfileRouter } from "./profiles/router.js";
import type { ProfileName } from "./profiles/types.js";

const EXAMPLES = `
Prints what the bridge would store for one PUBLISH under one profile (nothing is sent anywhere).
Exit codes: 0 accepted, 1 the bridge would refuse it (the reason is printed), 2 bad usage.

Examples:
  canopy mcu map test --profile tasmota --topic tele/plug1/SENSOR --payload '{"ENERGY":{"Power":45}}'
  canopy mcu map test --profile esphome --topic livingroom/sensor/temperature/state --payload 21.4 --json
  canopy mcu map test --profile custom --rules rules.json --topic home/kitchen/temp --payload '{"value":21.5}'
  (rules.json: [{"topic": "home/{mcu}/{metric}", "path": "env.{metric}", "field": "value"}])`;

function loadRules(path: string | undefined): Rule[] {
  if (!path) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CanopyError(ErrorCode.InvalidInput, `--rules ${path}: ${(err as Error).message}`);
  }
  const r = CustomTopicRule.array().max(64).safeParse(raw);
  if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `--rules ${path}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

/** `canopy mcu map test`: a dry run of one profile. `report(code)` receives the exit code. */
export function mapCommand(report: (code: number) => void): Command {
  const map = new Command("map").description("MQTT topic profiles of the firmware bridge");
  map
    .command("test")
    .description("dry run: what one MQTT publish becomes under a profile")
    .addOption(new Option("--profile <name>", "topic profile").choices([...MQTT_PROFILES]).makeOptionMandatory())
    .requiredOption("--topic <topic>", "PUBLISH topic")
    .option("--payload <text>", "payload text", "")
    .option("--client <id>", "MQTT client id (names the MCU of discovery topics without a node level)", "client")
    .option("--device <id>", "device id used in the printed subjects", "<dev>")
    .option("--rules <file>", "custom profile rules (JSON array, as bridge.mqtt.custom)")
    .option("--json", "print {profile, mcu, outputs, skipped} or {refused, reason}")
    .addHelpText("after", EXAMPLES)
    .action((o: { profile: ProfileName; topic: string; payload: string; client: string; device: string; rules?: string; json?: boolean }) => {
      checkId(o.client, "mcu id");
      if (o.device !== "<dev>") checkId(o.device, "device id");
      const router = new ProfileRouter([o.profile], loadRules(o.rules));
      const print = (v: unknown, text: string): void => void process.stdout.write(o.json ? `${JSON.stringify(v)}\n` : text);
      try {
        const r = router.recognise(o.topic, Buffer.from(o.payload, "utf8"), o.client);
        checkId(r.mcu, "mcu id");
        const outputs = r.outputs.map((x) => {
          if (x.kind === "tlm" || x.kind === "evt") {
            if (!isValidTokenPath(x.path)) throw new MqttProtocolError("invalid_id", `path ${x.path}`, 0x90);
            return { kind: x.kind, subject: `up.${o.device}.${x.kind}.mcu.${r.mcu}.${x.path}`, payload: Buffer.from(x.payload).toString("utf8") };
          }
          if (x.kind === "ack") return { kind: "ack", match: x.match, ok: x.ok, detail: x.detail };
          return { kind: "hello", board: x.board, firmware: x.firmware };
        });
        const lines = outputs.map((x) => ("subject" in x ? `${x.subject}  ${x.payload}` : `${x.kind}  ${JSON.stringify(x)}`));
        print({ profile: r.profile, mcu: r.mcu, outputs, skipped: r.skipped }, `profile ${r.profile}, mcu ${r.mcu} (the MQTT client id must be ${r.mcu})\n${lines.join("\n")}${lines.length ? "\n" : ""}${r.skipped ? `${r.skipped} field(s) skipped (not numeric, bad key or over the cap)\n` : ""}`);
        report(0);
      } catch (err) {
        if (!(err instanceof MqttProtocolError)) throw err;
        print({ refused: true, reason: err.reason, message: err.message }, `refused (${err.reason}): ${err.message}\n`);
        report(1);
      }
    });
  return map;
}
