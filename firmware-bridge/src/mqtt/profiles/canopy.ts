import { isValidId, isValidTokenPath } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { parseAck, parseHello } from "../payloads.js";
import { Reason } from "../reason.js";
import type { TopicProfile } from "./types.js";

const KINDS = new Set(["tlm", "evt", "ack", "hello", "cmd"]);

/**
 * Canopy's own map:
 *   `<mcu>/tlm/<metric...>` → telemetry, `<mcu>/evt/<name...>` → event,
 *   `<mcu>/ack/<command>` → command ack (MQTT 5 correlation data = link id), `<mcu>/hello` → board, firmware;
 * commands on `<mcu>/cmd/<name>` with the raw body.
 */
export const canopyProfile: TopicProfile = {
  name: "canopy",
  route(topic, payload, correlation) {
    const parts = topic.split("/");
    const [mcu, kind, ...rest] = parts;
    if (parts.length < 2 || !KINDS.has(kind as string)) return undefined;
    if (!parts.every((p) => isValidId(p))) {
      throw new MqttProtocolError("invalid_id", `topic ${JSON.stringify(topic.slice(0, 80))}: every level must match ^[A-Za-z0-9_-]{1,64}$`, Reason.TopicNameInvalid);
    }
    const path = rest.join(".");
    const routed = (outputs: Parameters<typeof Array.prototype.push>) => ({ profile: "canopy" as const, mcu: mcu as string, outputs, skipped: 0 });
    if (kind === "hello" && rest.length === 0) {
      const [board, firmware] = parseHello(payload);
      return routed([{ kind: "hello", board, firmware }]);
    }
    if ((kind === "tlm" || kind === "evt") && rest.length > 0) {
      if (!isValidTokenPath(path)) throw new MqttProtocolError("invalid_id", `topic ${topic}: at most 16 levels after ${kind}`, Reason.TopicNameInvalid);
      return routed([{ kind, path, payload }]);
    }
    if (kind === "ack" && rest.length === 1) {
      const { ok, detail } = parseAck(payload);
      const match = correlation && correlation.length === 2 ? { linkId: correlation.readUInt16BE(0) } : { name: rest[0] as string };
      return routed([{ kind: "ack", match, ok, detail }]);
    }
    throw new MqttProtocolError("topic_denied", `topic ${topic} is outside the topic map`, Reason.NotAuthorized);
  },
  filterAllowed(filter, mcu) {
    const parts = filter.split("/");
    if (parts.length !== 3 || parts[0] !== mcu || parts[1] !== "cmd") return false;
    const last = parts[2] as string;
    return last === "+" || last === "#" || isValidId(last);
  },
  encodeCommand(mcu, cmd) {
    return { topic: `${mcu}/cmd/${cmd.name}`, payload: Buffer.from(cmd.args.raw) };
  },
};
