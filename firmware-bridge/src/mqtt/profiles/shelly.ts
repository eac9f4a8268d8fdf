import { isValidId } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { Reason } from "../reason.js";
import { flattenNumeric, parseJson } from "./flatten.js";
import type { Output, TopicProfile } from "./types.js";

const enc = new TextEncoder();
/** The `src` the bridge puts in its JSON-RPC requests: Shelly answers on `<src>/rpc`. */
export const shellySrc = (mcu: string): string => `${mcu}/canopy`;

/** `switch-set` → `Switch.Set` (a command name is one token; a Shelly method is `Component.Method`). */
export function shellyMethod(name: string): string {
  return name
    .split(/[-_]/)
    .filter((s) => s.length > 0)
    .map((s) => s[0]?.toUpperCase() + s.slice(1))
    .join(".");
}

/**
 * Shelly Gen2+: `<id>/events/rpc` JSON-RPC notifications → event `rpc.<method>` (NotifyStatus and
 * NotifyFullStatus also → numeric telemetry, `switch:0` → `switch_0`), `<id>/online` true/false →
 * `status` event, `<id>/status/<component>` → numeric telemetry, `<id>/canopy/rpc` → the answer to
 * the bridge's request with that JSON-RPC id. Commands: JSON-RPC on `<id>/rpc`, method from the
 * `method` arg or the command name, params from `params` or the other args.
 */
export const shellyProfile: TopicProfile = {
  name: "shelly",
  route(topic, payload) {
    const parts = topic.split("/");
    const [id, a, b] = parts;
    const shape =
      parts.length === 3 && a === "events" && b === "rpc" ? "notify"
      : parts.length === 2 && a === "online" ? "online"
      : parts.length === 3 && a === "status" ? "status"
      : parts.length === 3 && a === "canopy" && b === "rpc" ? "response"
      : undefined;
    if (!shape) return undefined;
    if (!isValidId(id)) throw new MqttProtocolError("invalid_id", `shelly topic ${JSON.stringify(topic.slice(0, 80))}: device id must match ^[A-Za-z0-9_-]{1,64}$`, Reason.TopicNameInvalid);
    const out = (outputs: Output[], skipped = 0) => ({ profile: "shelly" as const, mcu: id as string, outputs, skipped });
    if (shape === "online") {
      const online = payload.toString("utf8").trim() === "true";
      return out([{ kind: "evt", path: "status", payload: enc.encode(JSON.stringify({ online, profile: "shelly" })) }]);
    }
    const doc = parseJson(payload) as Record<string, unknown> | undefined;
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new MqttProtocolError("bad_payload", `shelly ${shape} payload is not a JSON object`, Reason.PayloadFormatInvalid);
    if (shape === "status") {
      const comp = (b as string).toLowerCase().replace(/[:.]/g, "_");
      if (!isValidId(comp)) throw new MqttProtocolError("invalid_id", `shelly component ${JSON.stringify(b)}`, Reason.TopicNameInvalid);
      const { fields, skipped } = flattenNumeric(doc, [comp]);
      return out(fields.map((f) => ({ kind: "tlm", ...f })), skipped);
    }
    if (shape === "response") {
      const rpcId = doc["id"];
      if (typeof rpcId !== "number" || !Number.isInteger(rpcId) || rpcId < 0 || rpcId > 0xffff) return out([], 1);
      const err = doc["error"] as { message?: unknown } | undefined;
      const detail = JSON.stringify(err ?? doc["result"] ?? null).slice(0, 512);
      return out([{ kind: "ack", match: { linkId: rpcId }, ok: err === undefined, detail }]);
    }
    const method = typeof doc["method"] === "string" ? doc["method"].toLowerCase() : "";
    if (!isValidId(method)) throw new MqttProtocolError("bad_payload", "shelly notification without a valid method", Reason.PayloadFormatInvalid);
    const outputs: Output[] = [{ kind: "evt", path: `rpc.${method}`, payload }];
    let skipped = 0;
    if ((method === "notifystatus" || method === "notifyfullstatus") && doc["params"] && typeof doc["params"] === "object") {
      const flat = flattenNumeric(doc["params"], [], new Set(["ts"]));
      outputs.push(...flat.fields.map((f): Output => ({ kind: "tlm", ...f })));
      skipped = flat.skipped;
    }
    return out(outputs, skipped);
  },
  filterAllowed(filter, mcu) {
    return filter === `${mcu}/rpc` || filter === `${mcu}/command` || filter === `${mcu}/command/+` || filter === `${mcu}/command/#`;
  },
  encodeCommand(mcu, cmd) {
    const j = cmd.args.json ?? {};
    const { method: m, params: p, mcu: _mcu, ...rest } = j;
    const method = typeof m === "string" && /^[A-Za-z0-9_.]{1,64}$/.test(m) ? m : shellyMethod(cmd.name);
    const params = p !== undefined && typeof p === "object" ? p : rest;
    return { topic: `${mcu}/rpc`, payload: Buffer.from(JSON.stringify({ id: cmd.linkId, src: shellySrc(mcu), method, params })) };
  },
};
