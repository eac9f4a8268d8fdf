import { isValidId } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { Reason } from "../reason.js";
import { valueText } from "./command-args.js";
import { numericText } from "./flatten.js";
import type { Output, TopicProfile } from "./types.js";

const enc = new TextEncoder();
/** ESPHome MQTT components (`<node>/<component>/<object_id>/state`). */
const COMPONENTS = new Set([
  "sensor", "binary_sensor", "text_sensor", "switch", "light", "fan", "cover", "climate", "number", "select", "text", "button", "lock", "valve", "event", "alarm_control_panel",
]);

/**
 * ESPHome: `<node>/<component>/<name>/state` → telemetry `<component>.<name>` (numbers, ON/OFF → 1/0;
 * text → event), `<node>/status` online/offline (birth and LWT) → `status` event, `<node>/debug` (logs)
 * → `debug` event. A state update also closes a pending command of the same name. Commands go to
 * `<node>/<component>/<name>/command` (component from the `component` arg, default `switch`).
 */
export const esphomeProfile: TopicProfile = {
  name: "esphome",
  route(topic, payload) {
    const parts = topic.split("/");
    const [node, comp, name, leaf] = parts;
    const isStatus = parts.length === 2 && (comp === "status" || comp === "debug");
    const isState = parts.length === 4 && COMPONENTS.has(comp as string) && (leaf === "state" || leaf === "command");
    if (!isStatus && !isState) return undefined;
    if (!isValidId(node) || (isState && !isValidId(name))) {
      throw new MqttProtocolError("invalid_id", `esphome topic ${JSON.stringify(topic.slice(0, 80))}: node and object id must match ^[A-Za-z0-9_-]{1,64}$`, Reason.TopicNameInvalid);
    }
    const out = (outputs: Output[], skipped = 0) => ({ profile: "esphome" as const, mcu: node as string, outputs, skipped });
    if (comp === "status") {
      const online = payload.toString("utf8").trim().toLowerCase() === "online";
      return out([{ kind: "evt", path: "status", payload: enc.encode(JSON.stringify({ online, profile: "esphome" })) }]);
    }
    if (comp === "debug") return out([{ kind: "evt", path: "debug", payload }]);
    if (leaf === "command") throw new MqttProtocolError("topic_denied", `an MCU does not publish commands (${topic})`, Reason.NotAuthorized);
    const n = numericText(payload);
    const path = `${comp}.${name}`;
    const reading: Output = n === undefined ? { kind: "evt", path, payload } : { kind: "tlm", path, payload: enc.encode(n) };
    return out([reading, { kind: "ack", match: { name: name as string }, ok: true, detail: payload.toString("utf8").slice(0, 512), optional: true }]);
  },
  filterAllowed(filter, mcu) {
    if (filter === "homeassistant/status") return true; // HA's birth message: harmless, never sent by the bridge
    const parts = filter.split("/");
    return parts.length === 4 && parts[0] === mcu && (parts[1] === "+" || COMPONENTS.has(parts[1] as string)) && (parts[2] === "+" || isValidId(parts[2])) && parts[3] === "command";
  },
  encodeCommand(mcu, cmd) {
    const c = cmd.args.json?.["component"];
    const component = typeof c === "string" && COMPONENTS.has(c) ? c : "switch";
    return { topic: `${mcu}/${component}/${cmd.name}/command`, payload: Buffer.from(valueText(cmd.args)) };
  },
};
