/**
 * What a simulated MCU does, whatever the link: a board name, a firmware version, readings, and
 * answers to commands. `blink [n]` and `ping` succeed; anything else is answered with an error, as a
 * real sketch would for a command it does not know.
 */
export interface SimOptions {
  id: string;
  board?: string;
  firmware?: string;
  /** Readings per second; 0 = as fast as the link allows. */
  rate: number;
  /** Stop after this many readings were acknowledged (binary serial, MQTT QoS 1) or sent (text). */
  count?: number;
  /** Unacked binary frames / QoS 1 publishes in flight. */
  window?: number;
  /** Called with one-line JSON progress/summary records (the CLI prints them). */
  report?: (rec: Record<string, unknown>) => void;
}

export interface CommandResult {
  ok: boolean;
  detail: string;
}

export function runCommand(name: string, args: string): CommandResult {
  if (name === "blink") {
    const n = blinkCount(args.trim());
    return Number.isInteger(n) && n > 0 && n <= 100 ? { ok: true, detail: `blinked ${n}` } : { ok: false, detail: "bad blink count" };
  }
  if (name === "ping") return { ok: true, detail: "pong" };
  return { ok: false, detail: `unknown command ${name}` };
}

/** `blink 3` or `blink {"n":3}` (the agent sends named arguments as JSON). */
function blinkCount(args: string): number {
  if (!args.startsWith("{")) return Number(args || "1");
  try {
    const v = (JSON.parse(args) as { n?: unknown }).n;
    return typeof v === "number" ? v : Number(v ?? 1);
  } catch {
    return NaN;
  }
}

/** The k-th reading: a counter the tests use to check exactly-once delivery, as decimal text. */
export function reading(k: number): { metric: string; value: string } {
  return { metric: "counter", value: String(k) };
}

export function periodMs(rate: number): number {
  return rate > 0 ? 1000 / rate : 0;
}
