import { isValidId, isValidTokenPath, type CustomTopicRule } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { Reason } from "../reason.js";
import { valueText } from "./command-args.js";
import { parseJson } from "./flatten.js";
import type { TopicProfile } from "./types.js";

interface Compiled {
  rule: CustomTopicRule;
  levels: Array<{ literal: string } | { capture: string }>;
}

function compile(rule: CustomTopicRule): Compiled {
  const levels = rule.topic.split("/").map((l) => {
    const m = /^\{([A-Za-z0-9_]+)\}$/.exec(l);
    return m ? { capture: m[1] as string } : { literal: l };
  });
  return { rule, levels };
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, k: string) => vars[k] ?? "");
}

function pick(doc: unknown, field: string): unknown {
  let v = doc;
  for (const k of field.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** Rules from config (validated by `CustomTopicRule`): the first rule whose topic matches wins. */
export function customProfile(rules: CustomTopicRule[]): TopicProfile {
  const compiled = rules.map(compile);
  return {
    name: "custom",
    route(topic, payload) {
      const parts = topic.split("/");
      for (const c of compiled) {
        if (c.levels.length !== parts.length) continue;
        const vars: Record<string, string> = {};
        const ok = c.levels.every((l, i) => ("literal" in l ? l.literal === parts[i] : ((vars[l.capture] = parts[i] as string), true)));
        if (!ok) continue;
        if (!Object.values(vars).every((v) => isValidId(v))) {
          throw new MqttProtocolError("invalid_id", `custom topic ${JSON.stringify(topic.slice(0, 80))}: wildcard levels must match ^[A-Za-z0-9_-]{1,64}$`, Reason.TopicNameInvalid);
        }
        const path = fill(c.rule.path, vars);
        if (!isValidTokenPath(path)) throw new MqttProtocolError("invalid_id", `custom rule path ${JSON.stringify(path)} is not a token path`, Reason.TopicNameInvalid);
        let body: Uint8Array = payload;
        if (c.rule.field) {
          const v = pick(parseJson(payload), c.rule.field);
          if (v === undefined) return { profile: "custom", mcu: vars["mcu"] as string, outputs: [], skipped: 1 };
          body = Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
        }
        return { profile: "custom", mcu: vars["mcu"] as string, outputs: [{ kind: c.rule.kind, path, payload: body }], skipped: 0 };
      }
      return undefined;
    },
    filterAllowed(filter, mcu) {
      return compiled.some((c) => c.rule.command !== undefined && (filter === fill(c.rule.command, { mcu, name: "+" }) || filter === fill(c.rule.command, { mcu, name: "#" })));
    },
    encodeCommand(mcu, cmd) {
      const c = compiled.find((x) => x.rule.command !== undefined);
      return c?.rule.command ? { topic: fill(c.rule.command, { mcu, name: cmd.name }), payload: Buffer.from(valueText(cmd.args)) } : undefined;
    },
  };
}
