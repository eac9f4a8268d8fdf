import type { JsMsg } from "@nats-io/jetstream";
import type { StoredMsg } from "@nats-io/jetstream";

/** A device's upstream message as the hub stores it, printable as one JSON line. */
export interface UpRecord {
  device: string;
  subject: string;
  /** Sequence in the device's own UP stream (from `Nats-Stream-Source`). */
  seq: number | null;
  /** Sequence in the hub shard. */
  shardSeq: number;
  shard: string;
  time: string;
  headers: Record<string, string>;
  payload: string;
  encoding: "utf8" | "base64";
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** `up.<dev>.…` → dev */
export function deviceOf(subject: string): string {
  return subject.split(".")[1] ?? "";
}

/** The origin sequence from `Nats-Stream-Source: UP:<hash> <seq> …` that sourcing adds. */
export function originSeq(source: string | undefined): number | null {
  const n = Number(source?.split(" ")[1]);
  return Number.isFinite(n) && n > 0 ? n : null;
}

export function fromJsMsg(m: JsMsg, shard: string): UpRecord {
  const headers: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) headers[k] = m.headers?.get(k) ?? "";
  return build(m.subject, m.seq, shard, new Date(Math.floor(m.info.timestampNanos / 1e6)), headers, m.data);
}

export function fromStoredMsg(m: StoredMsg, shard: string): UpRecord {
  const headers: Record<string, string> = {};
  for (const k of m.header?.keys() ?? []) headers[k] = m.header.get(k);
  return build(m.subject, m.seq, shard, m.time, headers, m.data);
}

function build(subject: string, shardSeq: number, shard: string, time: Date, headers: Record<string, string>, data: Uint8Array): UpRecord {
  let payload: string;
  let encoding: UpRecord["encoding"] = "utf8";
  try {
    payload = decoder.decode(data);
  } catch {
    payload = Buffer.from(data).toString("base64");
    encoding = "base64";
  }
  return {
    device: deviceOf(subject),
    subject,
    seq: originSeq(headers["Nats-Stream-Source"]),
    shardSeq,
    shard,
    time: time.toISOString(),
    headers,
    payload,
    encoding,
  };
}
