/** Payload conventions of the MQTT topic map (PROTOCOL.md, part 3). */

/** `<mcu>/hello`: `<board> <fw>` or `{"board":…,"firmware":…}`. */
export function parseHello(payload: Buffer): [string, string] {
  const text = payload.toString("utf8").trim();
  try {
    const j = JSON.parse(text) as { board?: unknown; firmware?: unknown };
    if (typeof j.board === "string" && typeof j.firmware === "string") return [j.board.slice(0, 64), j.firmware.slice(0, 64)];
  } catch {
    /* not JSON: "<board> <fw>" */
  }
  const [board = "unknown", firmware = "unknown"] = text.split(/\s+/);
  return [board.slice(0, 64), firmware.slice(0, 64)];
}

/** `<mcu>/ack/<command>`: `ok [detail]` or `err [detail]`; anything else counts as ok with that detail. */
export function parseAck(payload: Buffer): { ok: boolean; detail: string } {
  const text = payload.toString("utf8");
  return { ok: !/^err(\s|$)/.test(text), detail: text.replace(/^(ok|err)\s?/, "") };
}
