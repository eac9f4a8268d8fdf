import { useEffect, useState } from "preact/hooks";
import type { FleetRow } from "../../src/http/types.js";
import { age, get, type SessionInfo } from "./api.js";
import { Plot } from "./plot.js";
import { Commands } from "./commands.js";

interface DeviceInfo {
  row: FleetRow | null;
  record: { id: string; groups: string[]; shard?: string };
  facts: Record<string, Record<string, unknown> | number | undefined> | null;
  up: { messages: number; bytes: number; lastSeq: number; discarded: number } | null;
  mcus: Array<{ id: string; board: string; firmware: string; link: string; online: boolean; lastSeen: number }>;
  agent: { version: string } | null;
  backlog: { pending: number | null; pendingBytes: number | null; lastReceivedAgeMs: number | null; discarded: number } | null;
}

interface ConfigView {
  revision: number;
  appliedRevision: number | null;
  keys: Array<{ key: string; value: unknown; source: string; revision: number; applied: { revision: number; status: string; error?: string } | null; inSync: boolean }>;
}

interface UpEvent {
  subject: string;
  time: string;
  payload: string;
}

/** Re-runs `load` now and every `ms` while the page is shown. */
export function usePoll<T>(load: () => Promise<T>, ms: number, deps: unknown[]): [T | undefined, string] {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState("");
  useEffect(() => {
    let alive = true;
    const run = (): void =>
      void load().then(
        (v) => alive && (setValue(v), setError("")),
        (e: Error) => alive && setError(e.message),
      );
    run();
    const t = setInterval(run, ms);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, deps);
  return [value, error];
}

function Facts({ info }: { info: DeviceInfo }) {
  const f = info.facts ?? {};
  const rows: Array<[string, string]> = [];
  for (const [group, v] of Object.entries(f)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) if (typeof x !== "object") rows.push([`${group}.${k}`, String(x)]);
    } else if (v !== undefined) rows.push([group, String(v)]);
  }
  return (
    <div class="card">
      <h3>Facts</h3>
      <table class="kv">
        <tbody>
          <tr><td>state</td><td data-testid="device-state">{info.row?.online ? "online" : "offline"}</td></tr>
          <tr><td>groups</td><td>{info.record.groups.join(", ") || "-"}</td></tr>
          <tr><td>agent</td><td>{info.agent?.version ?? "-"}</td></tr>
          <tr><td>backlog</td><td>{info.backlog?.pending ?? "?"} messages, last received {info.backlog?.lastReceivedAgeMs == null ? "never" : `${age(info.backlog.lastReceivedAgeMs)} ago`}, {info.backlog?.discarded ?? 0} discarded</td></tr>
          <tr><td>UP stream</td><td>{info.up ? `${info.up.messages} messages, ${info.up.bytes} bytes` : "-"}</td></tr>
          {rows.map(([k, v]) => (
            <tr key={k}><td>{k}</td><td>{v}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Device({ id, session }: { id: string; session: SessionInfo }) {
  const dev = encodeURIComponent(id);
  const [info, error] = usePoll(() => get<DeviceInfo>(`/api/devices/${dev}`), 3_000, [id]);
  const [config] = usePoll(() => get<ConfigView>(`/api/devices/${dev}/config`), 5_000, [id]);
  const [events] = usePoll(() => get<UpEvent[]>(`/api/devices/${dev}/events?limit=50`), 5_000, [id]);
  if (!info) return <p class={error ? "error" : "muted"}>{error || "loading…"}</p>;
  return (
    <section>
      <div class="toolbar">
        <h2>{id}</h2>
        <span class={info.row?.online ? "state on" : "state off"}>{info.row?.online ? "online" : "offline"}</span>
      </div>
      <Plot device={id} />
      <div class="cols">
        <Facts info={info} />
        <div class="card">
          <h3>MCUs</h3>
          <table class="grid">
            <thead><tr><th>MCU</th><th>Board</th><th>Firmware</th><th>Link</th><th>State</th></tr></thead>
            <tbody>
              {info.mcus.map((m) => (
                <tr key={m.id} data-testid="mcu-row"><td>{m.id}</td><td>{m.board}</td><td>{m.firmware}</td><td>{m.link}</td><td>{m.online ? "online" : "offline"}</td></tr>
              ))}
            </tbody>
          </table>
          <h3>Config</h3>
          <p class="muted">hub revision {config?.revision ?? "-"}, applied {config?.appliedRevision ?? "-"}</p>
          <table class="grid">
            <thead><tr><th>Key</th><th>Value</th><th>Source</th><th>Rev</th><th>Applied</th></tr></thead>
            <tbody>
              {(config?.keys ?? []).map((k) => (
                <tr key={k.key} data-testid="config-row"><td>{k.key}</td><td><code>{JSON.stringify(k.value)}</code></td><td>{k.source}</td><td>{k.revision}</td>
                  <td>{k.inSync ? `✓ ${k.applied?.revision}` : k.applied?.status === "failed" ? `failed: ${k.applied.error ?? ""}` : "pending"}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <Commands device={id} session={session} />
      <div class="card">
        <h3>Events</h3>
        <table class="grid">
          <tbody>
            {(events ?? []).map((e, i) => (
              <tr key={i}><td class="nowrap">{e.time}</td><td>{e.subject.split(".").slice(3).join(".")}</td><td><code>{e.payload.slice(0, 200)}</code></td></tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
