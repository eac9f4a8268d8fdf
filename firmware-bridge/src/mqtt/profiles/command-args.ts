/**
 * A command's body as the bridge receives it (JSON object from `--arg k=v`, or raw bytes). Profiles
 * pick what their firmware expects: Tasmota/ESPHome a `value` string, Shelly JSON-RPC params.
 */
export interface McuCommandArgs {
  raw: Uint8Array;
  json: Record<string, unknown> | undefined;
}

export function commandArgs(raw: Uint8Array): McuCommandArgs {
  let json: Record<string, unknown> | undefined;
  if (raw.length > 0 && raw.length <= 64 * 1024 && raw[0] === 0x7b) {
    try {
      const v: unknown = JSON.parse(Buffer.from(raw).toString("utf8"));
      if (v && typeof v === "object" && !Array.isArray(v)) json = v as Record<string, unknown>;
    } catch {
      /* not JSON: raw bytes */
    }
  }
  return { raw, json };
}

/** `value` (or `state`) as the firmware's text payload; without it the raw body (empty = query). */
export function valueText(a: McuCommandArgs): string {
  const v = a.json ? (a.json["value"] ?? a.json["state"]) : undefined;
  if (v === undefined) return a.json ? "" : Buffer.from(a.raw).toString("utf8");
  return typeof v === "string" ? v : JSON.stringify(v);
}
