import type { CustomTopicRule } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { Reason } from "../reason.js";
import { canopyProfile } from "./canopy.js";
import { commandArgs } from "./command-args.js";
import { customProfile } from "./custom.js";
import { routeDiscovery } from "./discovery.js";
import { esphomeProfile } from "./esphome.js";
import { mqttMatch } from "./flatten.js";
import { shellyProfile } from "./shelly.js";
import { tasmotaProfile } from "./tasmota.js";
import type { EncodedCommand, ProfileName, Routed, TopicProfile } from "./types.js";

/**
 * The enabled topic profiles, tried in a fixed order (canopy, tasmota, esphome, shelly, custom);
 * shapes do not overlap, so the first that recognises a topic owns it. Home Assistant discovery is
 * read whenever tasmota or esphome is on.
 */
export class ProfileRouter {
  readonly profiles: TopicProfile[];
  private readonly discovery: boolean;

  constructor(names: readonly ProfileName[], custom: CustomTopicRule[] = []) {
    const all: TopicProfile[] = [canopyProfile, tasmotaProfile, esphomeProfile, shellyProfile, customProfile(custom)];
    this.profiles = all.filter((p) => names.includes(p.name));
    this.discovery = names.includes("tasmota") || names.includes("esphome");
  }

  /**
   * What a PUBLISH from `clientId` becomes. Throws `MqttProtocolError`: `wildcard`, `invalid_id`,
   * `bad_payload`, or `topic_denied` for a topic no profile knows or one that names another MCU.
   */
  route(topic: string, payload: Buffer, clientId: string, correlation?: Buffer): Routed {
    if (/[+#]/.test(topic)) throw new MqttProtocolError("wildcard", "wildcard in a PUBLISH topic", Reason.TopicNameInvalid);
    let r: Routed | undefined = this.discovery ? routeDiscovery(topic, payload, clientId) : undefined;
    for (const p of this.profiles) {
      if (r) break;
      r = p.route(topic, payload, correlation);
    }
    if (!r) throw new MqttProtocolError("topic_denied", `topic ${JSON.stringify(topic.slice(0, 80))} matches no enabled profile (${this.names})`, Reason.NotAuthorized);
    if (r.mcu !== clientId) throw new MqttProtocolError("topic_denied", `client ${clientId} may not publish as ${r.mcu}`, Reason.NotAuthorized);
    return r;
  }

  get names(): string {
    return this.profiles.map((p) => p.name).join(",");
  }

  filterAllowed(filter: string, clientId: string): boolean {
    return this.profiles.some((p) => p.filterAllowed(filter, clientId));
  }

  /**
   * The PUBLISH for command `name` to `mcu`: from the profile the MCU last spoke (`preferred`) first,
   * the first whose topic one of the MCU's subscriptions matches. Undefined if none does.
   */
  encode(mcu: string, cmd: { linkId: number; name: string; args: Uint8Array }, subscribed: Iterable<string>, preferred?: ProfileName): (EncodedCommand & { profile: ProfileName; filter: string }) | undefined {
    const args = commandArgs(cmd.args);
    const order = [...this.profiles].sort((a, b) => Number(b.name === preferred) - Number(a.name === preferred));
    const filters = [...subscribed];
    for (const p of order) {
      const e = p.encodeCommand(mcu, { linkId: cmd.linkId, name: cmd.name, args });
      const filter = e && filters.find((f) => mqttMatch(f, e.topic));
      if (e && filter) return { ...e, profile: p.name, filter };
    }
    return undefined;
  }
}
