import { isValidId, isValidTokenPath } from "@canopy/protocol";
import { MqttProtocolError } from "../errors.js";
import { Reason } from "./reason.js";

/**
 * The MQTT topic map. An MCU may publish only under its own client id:
 *   `<mcu>/tlm/<metric...>` → `up.<dev>.tlm.mcu.<mcu>.<metric...>`
 *   `<mcu>/evt/<name...>`   → `up.<dev>.evt.mcu.<mcu>.<name...>`
 *   `<mcu>/ack/<command>`   → command ack → `up.<dev>.evt.mcu.<mcu>.ack.<command>`
 *   `<mcu>/hello`           → board and firmware (payload `<board> <fw>` or JSON)
 * and subscribe only to its command topics `<mcu>/cmd/<name>`, `<mcu>/cmd/+`, `<mcu>/cmd/#`.
 */
export type TopicRoute =
  | { kind: "tlm"; path: string }
  | { kind: "evt"; path: string }
  | { kind: "ack"; name: string }
  | { kind: "hello" };

/**
 * Throws `MqttProtocolError`: `wildcard` for + or # (never allowed in a PUBLISH topic), `invalid_id`
 * for tokens outside the id rule, `topic_denied` for topics outside the map or another MCU's topics.
 */
export function routeTopic(topic: string, clientId: string): TopicRoute {
  if (/[+#]/.test(topic)) {
    throw new MqttProtocolError("wildcard", "wildcard in a PUBLISH topic", Reason.TopicNameInvalid);
  }
  const parts = topic.split("/");
  const [mcu, kind, ...rest] = parts;
  if (!isValidId(mcu) || parts.some((p) => !isValidId(p))) {
    throw new MqttProtocolError("invalid_id", `topic ${JSON.stringify(topic.slice(0, 80))}: every level must match ^[A-Za-z0-9_-]{1,64}$`, Reason.TopicNameInvalid);
  }
  if (mcu !== clientId) {
    throw new MqttProtocolError("topic_denied", `client ${clientId} may not publish as ${mcu}`, Reason.NotAuthorized);
  }
  const path = rest.join(".");
  if (kind === "hello" && rest.length === 0) return { kind: "hello" };
  if ((kind === "tlm" || kind === "evt") && rest.length > 0) {
    if (!isValidTokenPath(path)) {
      throw new MqttProtocolError("invalid_id", `topic ${topic}: at most 16 levels after ${kind}`, Reason.TopicNameInvalid);
    }
    return { kind, path };
  }
  if (kind === "ack" && rest.length === 1) return { kind: "ack", name: rest[0] as string };
  throw new MqttProtocolError("topic_denied", `topic ${topic} is outside the topic map`, Reason.NotAuthorized);
}

/** A SUBSCRIBE filter is granted only for the client's own command topics. */
export function commandFilterAllowed(filter: string, clientId: string): boolean {
  const parts = filter.split("/");
  if (parts.length !== 3 || parts[0] !== clientId || parts[1] !== "cmd") return false;
  const last = parts[2] as string;
  return last === "+" || last === "#" || isValidId(last);
}

/** Does an allowed filter match the command topic `<mcu>/cmd/<name>`? */
export function filterMatches(filter: string, name: string): boolean {
  const last = filter.slice(filter.lastIndexOf("/") + 1);
  return last === "+" || last === "#" || last === name;
}
