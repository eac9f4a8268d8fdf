import { isValidId } from "@canopy/protocol";
import { parseJson } from "./flatten.js";
import type { McuEntity, Routed } from "./types.js";

const enc = new TextEncoder();
const str = (v: unknown): string | undefined => (typeof v === "string" && v.length <= 128 ? v : undefined);

/**
 * Home Assistant discovery, `homeassistant/<component>/[<node>/]<object>/config` (retained, sent by
 * ESPHome and Tasmota): names an entity of the MCU (name, unit, device class) as the event
 * `entity.<component>.<object>`. Without a node level the MCU is the publishing client.
 */
export function routeDiscovery(topic: string, payload: Buffer, clientId: string): Routed | undefined {
  const parts = topic.split("/");
  if (parts[0] !== "homeassistant" || (parts.length !== 4 && parts.length !== 5) || parts.at(-1) !== "config") return undefined;
  const component = parts[1] as string;
  const mcu = parts.length === 5 ? (parts[2] as string) : clientId;
  const object = (parts.length === 5 ? parts[3] : parts[2]) as string;
  if (!isValidId(component) || !isValidId(mcu) || !isValidId(object)) return { profile: "canopy", mcu: clientId, outputs: [], skipped: 1 };
  const doc = parseJson(payload) as Record<string, unknown> | undefined;
  if (payload.length === 0 || !doc || typeof doc !== "object") return { profile: "canopy", mcu, outputs: [], skipped: 1 }; // removal or junk
  const name = str(doc["name"]);
  const unit = str(doc["unit_of_measurement"] ?? doc["unit_of_meas"]);
  const deviceClass = str(doc["device_class"] ?? doc["dev_cla"]);
  const entity: McuEntity = { component, object, ...(name ? { name } : {}), ...(unit ? { unit } : {}), ...(deviceClass ? { deviceClass } : {}) };
  return { profile: "canopy", mcu, outputs: [{ kind: "evt", path: `entity.${component}.${object}`, payload: enc.encode(JSON.stringify(entity)) }], skipped: 0 };
}
