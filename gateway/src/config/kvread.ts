import type { KV, KvEntry } from "@nats-io/kv";

/** Runs `fn` over `items` with at most `limit` in flight (requests pipeline on one connection). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Latest live entry of every key matching `filter`. `keys()` ends cleanly on an empty bucket (a watch
 * would not tell "nothing" from "not yet"), then the gets pipeline.
 */
export async function readAll(kv: KV, filter = ">"): Promise<Map<string, KvEntry>> {
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  const entries = await mapLimit(keys, 64, (k) => kv.get(k));
  const out = new Map<string, KvEntry>();
  for (const e of entries) if (e && e.operation === "PUT") out.set(e.key, e);
  return out;
}

/** JSON with object keys sorted: equal values compare equal whatever order they were written in. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** True when a KV write failed because the key moved (compare-and-set lost). */
export function isCasConflict(err: unknown): boolean {
  const m = err instanceof Error ? err.message : String(err);
  return /wrong last sequence|key exists|10071/i.test(m);
}
