import type { McuCommandArgs } from "./command-args.js";

export type { McuCommandArgs };

export const PROFILE_NAMES = ["canopy", "tasmota", "esphome", "shelly", "custom"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** What one PUBLISH becomes. Paths are token paths (`energy.power`), validated before use. */
export type Output =
  | { kind: "tlm"; path: string; payload: Uint8Array }
  | { kind: "evt"; path: string; payload: Uint8Array }
  /** A command answer: by link id (MQTT 5 correlation data, Shelly JSON-RPC id) or by command name. */
  /** `optional`: a state echo that closes a command if one is pending, and is no ack otherwise. */
  | { kind: "ack"; match: { linkId: number } | { name: string }; ok: boolean; detail: string; optional?: boolean }
  | { kind: "hello"; board: string; firmware: string };

/** A Home Assistant discovery record: names an entity of the MCU. */

export interface McuEntity {
  component: string;
  object: string;
  name?: string;
  unit?: string;
  deviceClass?: string;
}

export interface Routed {
  profile: ProfileName;
  /** The MCU the topic names (must be the publishing client's id). */
  mcu: string;
  outputs: Output[];
  /** Fields of the payload left out (not numeric, bad key, over the cap): counted, never silent. */
  skipped: number;
}

export interface EncodedCommand {
  topic: string;
  payload: Buffer;
}

/**
 * A topic profile: a firmware's MQTT conventions. `route` returns undefined for a topic that is not
 * of this profile's shape, and throws `MqttProtocolError` for one of its shape with bad content.
 */
export interface TopicProfile {
  readonly name: ProfileName;
  route(topic: string, payload: Buffer, correlation?: Buffer): Routed | undefined;
  /** May client `mcu` subscribe to `filter` under this profile? */
  filterAllowed(filter: string, mcu: string): boolean;
  /** The PUBLISH carrying command `cmd` to `mcu`, or undefined if this profile cannot express it. */
  encodeCommand(mcu: string, cmd: { linkId: number; name: string; args: McuCommandArgs }): EncodedCommand | undefined;
}
