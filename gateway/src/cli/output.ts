/** Human tables for read commands; `--json` bypasses them entirely. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** "4s", "12m", "3h", "2d" */
export function age(ms: number | undefined): string {
  if (ms === undefined) return "-";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)}${units[u]}`;
}


/** "250ms", "2s", "10m", "24h", "7d": the largest unit that divides evenly. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * A structured value as indented `key: value` lines (objects nest, short arrays of scalars stay on
 * one line), for results such as `sysinfo`; `--json` prints the value unchanged.
 */
export function readable(value: unknown, indent = ""): string[] {
  if (value === null || typeof value !== "object") return [`${indent}${JSON.stringify(value)}`];
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [`- [${i}]`, v]) : Object.entries(value);
  const out: string[] = [];
  for (const [k, v] of entries) {
    const scalars = Array.isArray(v) && v.every((x) => x === null || typeof x !== "object");
    if (v !== null && typeof v === "object" && !scalars && Object.keys(v).length > 0) out.push(`${indent}${k}:`, ...readable(v, `${indent}  `));
    else out.push(`${indent}${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  }
  return out;
}
