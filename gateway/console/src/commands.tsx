import { useState } from "preact/hooks";
import { age, get, post, type SessionInfo } from "./api.js";
import { usePoll } from "./device.js";

interface CommandRecord {
  id: string;
  name: string;
  args: Record<string, unknown>;
  state: string;
  createdAt: number;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Command history with results, and a form to send one (disabled for read-only tokens). */
export function Commands({ device, session }: { device: string; session: SessionInfo }) {
  const dev = encodeURIComponent(device);
  const [tick, setTick] = useState(0);
  const [list] = usePoll(() => get<CommandRecord[]>(`/api/devices/${dev}/commands?limit=20`), 1_000, [device, tick]);
  const [name, setName] = useState("ping");
  const [args, setArgs] = useState("{}");
  const [ttl, setTtl] = useState("1h");
  const [msg, setMsg] = useState("");
  const send = (e: Event): void => {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(args || "{}");
    } catch {
      setMsg("args must be a JSON object");
      return;
    }
    post<CommandRecord>(`/api/devices/${dev}/commands`, { name, args: parsed, ttl }).then(
      (r) => {
        setMsg(`sent ${r.name}: ${r.id}`);
        setTick((t) => t + 1);
      },
      (err: Error) => setMsg(err.message),
    );
  };
  const now = Date.now();
  return (
    <div class="card">
      <h3>Commands</h3>
      <form class="toolbar" onSubmit={send}>
        <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} data-testid="cmd-name" size={14} />
        <input value={args} onInput={(e) => setArgs((e.target as HTMLInputElement).value)} data-testid="cmd-args" size={30} title="arguments as a JSON object" />
        <select value={ttl} onChange={(e) => setTtl((e.target as HTMLSelectElement).value)}>
          <option value="10m">TTL 10m</option>
          <option value="1h">TTL 1h</option>
          <option value="24h">TTL 24h</option>
        </select>
        <button type="submit" disabled={session.readOnly} data-testid="cmd-send" title={session.readOnly ? "read-only token" : ""}>
          Send
        </button>
        <span class="muted" data-testid="cmd-message">{msg}</span>
      </form>
      <table class="grid">
        <thead><tr><th>Id</th><th>Command</th><th>State</th><th>Age</th><th>Result</th></tr></thead>
        <tbody>
          {(list ?? []).map((c) => (
            <tr key={c.id} data-testid="cmd-row" data-name={c.name} data-state={c.state}>
              <td><code>{c.id}</code></td>
              <td>{c.name} <code>{Object.keys(c.args).length ? JSON.stringify(c.args) : ""}</code></td>
              <td data-testid="cmd-state" class={`cmd ${c.state}`}>{c.state}</td>
              <td>{age(now - c.createdAt)}</td>
              <td><code>{c.error ? `${c.error.code}: ${c.error.message}` : c.result === undefined ? "" : JSON.stringify(c.result).slice(0, 160)}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
