import { isValidId } from "@canopy/protocol";

const MAX_FIELDS = 64;
const MAX_DEPTH = 15;
const enc = new TextEncoder();

/**
 * Numeric leaves of a JSON document as token paths: `{"ENERGY":{"Power":45}}` → `energy.power` = "45".
 * Keys are lower-cased; `:` and `.` inside a key become `_` (Shelly's `switch:0`); keys still outside
 * the id rule, strings other than ON/OFF (→ 1/0), nulls and leaves past the caps are skipped and counted.
 */
export function flattenNumeric(doc: unknown, prefix: string[] = [], skipKeys: ReadonlySet<string> = new Set()): { fields: Array<{ path: string; payload: Uint8Array }>; skipped: number } {
  const fields: Array<{ path: string; payload: Uint8Array }> = [];
  let skipped = 0;
  const walk = (v: unknown, path: string[]): void => {
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "string") {
      const n = typeof v === "number" ? (Number.isFinite(v) ? v : undefined) : typeof v === "boolean" ? (v ? 1 : 0) : onOff(v);
      if (n === undefined || path.length === 0 || fields.length >= MAX_FIELDS) skipped++;
      else fields.push({ path: path.join("."), payload: enc.encode(String(n)) });
      return;
    }
    if (v === null || typeof v !== "object" || path.length >= MAX_DEPTH) {
      skipped++;
      return;
    }
    const entries: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    for (const [k, x] of entries) {
      if (path.length === prefix.length && skipKeys.has(k)) continue;
      const key = k.toLowerCase().replace(/[:.]/g, "_");
      if (!isValidId(key)) skipped++;
      else walk(x, [...path, key]);
    }
  };
  walk(doc, prefix);
  return { fields, skipped };
}

function onOff(s: string): number | undefined {
  const u = s.toUpperCase();
  if (u === "ON" || u === "TRUE" || u === "ONLINE") return 1;
  if (u === "OFF" || u === "FALSE" || u === "OFFLINE") return 0;
  const n = s.trim() === "" ? NaN : Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** JSON.parse that returns undefined instead of throwing. */
export function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** A text payload as a number string, or ON/OFF → 1/0; undefined when it is neither. */
export function numericText(payload: Buffer): string | undefined {
  const n = onOff(payload.toString("utf8"));
  return n === undefined ? undefined : String(n);
}

/** Does MQTT filter `filter` match topic `topic` (`+` one level, `#` the rest)? */
export function mqttMatch(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
