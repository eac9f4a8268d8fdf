import type { IConnackPacket, IConnectPacket } from "mqtt-packet";
import { isValidId } from "@canopy/protocol";
import { MqttProtocolError } from "../errors.js";
import { authenticate, type AuthPolicy } from "./auth.js";
import { Reason } from "./reason.js";
import type { ProfileRouter } from "./profiles/router.js";
import type { Routed } from "./profiles/types.js";

export interface AcceptedConnect {
  clientId: string;
  version: 4 | 5;
  keepaliveS: number;
  board: string;
  firmware: string;
  /** What the Last Will becomes (readings and events only), published if the client vanishes. */
  will: Routed | undefined;
}

function userProp(pkt: IConnectPacket, name: string): string | undefined {
  const v = pkt.properties?.userProperties?.[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === "string" && /^[\x21-\x7e]{1,64}$/.test(s) ? s : undefined;
}

/**
 * Validates a CONNECT: protocol 3.1.1 or 5, client id = MCU id under the id rule, credentials when
 * the auth policy asks for them, a Last Will that maps to the MCU's own topics at QoS ≤ 1. Throws
 * `MqttProtocolError` whose `reasonCode` goes into the refusing CONNACK.
 */
export async function acceptConnect(pkt: IConnectPacket, auth: AuthPolicy, router: ProfileRouter): Promise<AcceptedConnect> {
  const version = pkt.protocolVersion;
  if (version !== 4 && version !== 5) {
    throw new MqttProtocolError("bad_version", `protocol version ${version} (3.1.1 and 5.0 are supported)`, Reason.UnsupportedProtocolVersion);
  }
  const clientId = pkt.clientId;
  if (!isValidId(clientId)) {
    throw new MqttProtocolError(
      "invalid_id",
      `client id ${JSON.stringify(String(clientId).slice(0, 80))} must be the MCU id (^[A-Za-z0-9_-]{1,64}$)`,
      Reason.ClientIdentifierNotValid,
    );
  }
  const password = pkt.password === undefined ? undefined : Buffer.from(pkt.password);
  if ((await authenticate(auth, clientId, pkt.username, password)) !== "ok") {
    // One answer for every failure (no such MCU, wrong password, anonymous): "not authorized".
    throw new MqttProtocolError("not_authorized", `client ${clientId} is not authorized`, Reason.NotAuthorized);
  }
  let will: AcceptedConnect["will"];
  if (pkt.will) {
    if ((pkt.will.qos ?? 0) > 1) throw new MqttProtocolError("qos2", "will QoS 2 is not supported", Reason.QosNotSupported);
    const payload = pkt.will.payload;
    const route = router.route(pkt.will.topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload ?? ""), clientId);
    if (route.profile === "canopy" && pkt.will.retain && version === 5) {
      throw new MqttProtocolError("retain", "retained wills are not supported on Canopy topics", Reason.RetainNotSupported);
    }
    if (route.outputs.some((o) => o.kind !== "tlm" && o.kind !== "evt") || route.outputs.length === 0) {
      throw new MqttProtocolError("topic_denied", "a will must be a reading or an event of the MCU (e.g. <mcu>/evt/…, tele/<mcu>/LWT, <node>/status)", Reason.TopicNameInvalid);
    }
    will = route;
  }
  return {
    clientId,
    version,
    keepaliveS: pkt.keepalive ?? 0,
    board: userProp(pkt, "board") ?? "unknown",
    firmware: userProp(pkt, "firmware") ?? "unknown",
    will,
  };
}

/** The CONNACK of an accepted client; MQTT 5 clients learn the listener's limits from it. */
export function connackAccepted(version: 4 | 5, l: { receiveMaximum: number; maxPacketBytes: number }): IConnackPacket {
  if (version === 4) return { cmd: "connack", sessionPresent: false, returnCode: 0 };
  return {
    cmd: "connack",
    sessionPresent: false,
    reasonCode: 0,
    properties: {
      maximumQoS: 1,
      retainAvailable: true, // accepted where a profile sends them (LWT, status, discovery); never stored
      receiveMaximum: l.receiveMaximum,
      maximumPacketSize: l.maxPacketBytes,
      topicAliasMaximum: 0,
      wildcardSubscriptionAvailable: true,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false,
    },
  };
}
