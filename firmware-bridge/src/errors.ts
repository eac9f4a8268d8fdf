import { CanopyError, ErrorCode } from "@canopy/protocol";

/** Bad bytes from a microcontroller: the frame is dropped and counted, the link stays up. */
export class FrameError extends CanopyError {
  override readonly name = "FrameError";
  constructor(
    /** Counter name the rejection is filed under, e.g. `bad_crc`. */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.InvalidInput, message, options);
  }
}

/** An MQTT client broke the protocol: the connection is closed as the spec says, and counted. */
export class MqttProtocolError extends CanopyError {
  override readonly name = "MqttProtocolError";
  constructor(
    readonly reason: string,
    message: string,
    /** MQTT 5 reason code for CONNACK / DISCONNECT. */
    readonly reasonCode: number,
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.Rejected, message, options);
  }
}

export class LinkError extends CanopyError {
  override readonly name = "LinkError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Unavailable, message, options);
  }
}
