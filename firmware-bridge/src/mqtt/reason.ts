/** MQTT 5 reason codes used by the listener (and the 3.1.1 CONNACK return codes they map to). */
export const Reason = {
  Success: 0x00,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  PayloadFormatInvalid: 0x99,
  ImplementationSpecificError: 0x83,
  RetainNotSupported: 0x9a,
  QosNotSupported: 0x9b,
  ServerShuttingDown: 0x8b,
  MaximumConnectTime: 0xa0,
} as const;

/** MQTT 3.1.1 CONNACK return code for a v5 reason (3.1.1 has only five refusals). */
export function v4ConnackCode(reason: number): number {
  switch (reason) {
    case Reason.UnsupportedProtocolVersion:
      return 1;
    case Reason.ClientIdentifierNotValid:
      return 2;
    case Reason.BadUserNameOrPassword:
      return 4;
    case Reason.NotAuthorized:
      return 5;
    default:
      return 3; // server unavailable
  }
}
