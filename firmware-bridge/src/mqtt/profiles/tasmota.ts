import { isValidId } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { Reason } from "../reason.js";
import { valueText } from "./command-args.js";
import { flattenNumeric, numericText, parseJson } from "./flatten.js";
import type { Output, TopicProfile } from "./types.js";

const enc = new TextEncoder();
/** Tasmota's default FullTopic `%prefix%/%topic%/`; the MCU id is the Tasmota topic (= client id). */
const PREFIXES = new Set(["tele", "stat", "cmnd"]);
const SKIP = new Set(["Time", "TempUnit", "PressureUnit", "SpeedUnit", "Uptime", "Wifi.SSId", "Wifi.BSSId"]);

/**
 * Tasmota: `tele/<t>/SENSOR|STATE` JSON → numeric telemetry (flattened, lower-case: `ENERGY.Power` →
 * `energy.power`), `tele/<t>/LWT` Online/Offline → `status` event, `stat/<t>/RESULT` → the answer to the
 * command named by its key (`{"POWER":"ON"}` closes `power`), `stat/<t>/POWER` → `power` telemetry;
 * other `tele`/`stat` subtopics (INFO1…, STATUS…) → events. Commands: `cmnd/<t>/<COMMAND>` with `value`.
 */
export const tasmotaProfile: TopicProfile = {
  name: "tasmota",
  route(topic, payload) {
    const parts = topic.split("/");
    if (parts.length !== 3 || !PREFIXES.has(parts[0] as string)) return undefined;
    const [prefix, mcu, sub] = parts as [string, string, string];
    if (!isValidId(mcu) || !isValidId(sub)) {
      throw new MqttProtocolError("invalid_id", `tasmota topic ${JSON.stringify(topic.slice(0, 80))}: topic and command must match ^[A-Za-z0-9_-]{1,64}$`, Reason.TopicNameInvalid);
    }
    if (prefix === "cmnd") throw new MqttProtocolError("topic_denied", `an MCU does not publish commands (${topic})`, Reason.NotAuthorized);
    const out = (outputs: Output[], skipped = 0) => ({ profile: "tasmota" as const, mcu, outputs, skipped });
    const upper = sub.toUpperCase();
    if (prefix === "tele" && (upper === "SENSOR" || upper === "STATE")) {
      const doc = parseJson(payload);
      if (doc === null || typeof doc !== "object") throw new MqttProtocolError("bad_payload", `tasmota ${upper} is not a JSON object`, Reason.PayloadFormatInvalid);
      const { fields, skipped } = flattenNumeric(doc, [], SKIP);
      return out(fields.map((f) => ({ kind: "tlm", ...f })), skipped);
    }
    if (prefix === "tele" && upper === "LWT") {
      const online = payload.toString("utf8").trim().toLowerCase() === "online";
      return out([{ kind: "evt", path: "status", payload: enc.encode(JSON.stringify({ online, profile: "tasmota" })) }]);
    }
    if (prefix === "stat" && upper === "RESULT") {
      const doc = parseJson(payload);
      if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return out([{ kind: "evt", path: "result", payload }]);
      const keys = Object.keys(doc);
      const unknown = (doc as Record<string, unknown>)["Command"] === "Unknown";
      const acks: Output[] = keys
        .filter((k) => isValidId(k.toLowerCase()))
        .map((k) => ({ kind: "ack", match: { name: k.toLowerCase() }, ok: !unknown, detail: payload.toString("utf8").slice(0, 512) }));
      return out([...acks, { kind: "evt", path: "result", payload }]);
    }
    if (prefix === "stat" && /^POWER\d*$/.test(upper)) {
      const n = numericText(payload);
      return out(n === undefined ? [] : [{ kind: "tlm", path: sub.toLowerCase(), payload: enc.encode(n) }], n === undefined ? 1 : 0);
    }
    return out([{ kind: "evt", path: `${prefix}.${sub.toLowerCase()}`, payload }]);
  },
  filterAllowed(filter, mcu) {
    // Tasmota subscribes to its topic, its fallback topic and the group topic.
    const [p, t, rest, ...more] = filter.split("/");
    return p === "cmnd" && (t === mcu || t === `${mcu}_fb` || t === "tasmotas") && (rest === "#" || rest === "+") && more.length === 0;
  },
  encodeCommand(mcu, cmd) {
    return { topic: `cmnd/${mcu}/${cmd.name.toUpperCase()}`, payload: Buffer.from(valueText(cmd.args)) };
  },
};
