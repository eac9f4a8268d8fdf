import { useState } from "preact/hooks";
import { age, get, post, type SessionInfo } from "./api.js";
import { usePoll } from "./device.js";

interface Wave {
  percent: number;
  devices: string[];
  releasedAt?: number;
  passedAt?: number;
  results: Record<string, { result: string; error?: string }>;
}

interface Rollout {
  id: string;
  key: string;
  value: unknown;
  group: string;
  state: string;
  current: number;
  createdAt: number;
  reason?: string;
  abortRequested?: boolean;
  options: { healthTimeoutMs: number; maxFailures: number; offlineFails: boolean; soakMs: number };
  waves: Wave[];
}

const ACTIVE = new Set(["running", "finalizing", "halting"]);

function waveState(r: Rollout, w: Wave, i: number): string {
  if (w.passedAt) return "passed";
  if (w.releasedAt) return i === r.current && r.state === "running" ? "checking" : "released";
  return "not started";
}

function RolloutCard({ r, session, onChange }: { r: Rollout; session: SessionInfo; onChange: () => void }) {
  const [msg, setMsg] = useState("");
  const abort = (): void => {
    post(`/api/rollouts/${encodeURIComponent(r.id)}/abort`, {}).then(
      () => {
        setMsg("abort requested");
        onChange();
      },
      (e: Error) => setMsg(e.message),
    );
  };
  const canAbort = ACTIVE.has(r.state) && !r.abortRequested;
  return (
    <div class="card" data-testid="rollout" data-id={r.id} data-state={r.state}>
      <div class="toolbar">
        <h3>
          {r.key} = <code>{JSON.stringify(r.value)}</code> → group {r.group}
        </h3>
        <span class={`state ${r.state}`} data-testid="rollout-state">{r.state}</span>
        <span class="muted">{r.id}, {age(Date.now() - r.createdAt)} ago</span>
        <span class="grow" />
        <button class="danger" data-testid="abort" disabled={session.readOnly || !canAbort} onClick={abort} title={session.readOnly ? "read-only token" : ""}>
          Abort
        </button>
      </div>
      <p class="muted">
        health gate: applied within {r.options.healthTimeoutMs / 1000}s, at most {r.options.maxFailures} failure(s), offline {r.options.offlineFails ? "fails" : "pending"}, soak {r.options.soakMs / 1000}s
        {r.reason ? ` — ${r.reason}` : ""}
        {r.abortRequested && r.state === "running" ? " — abort requested" : ""}
      </p>
      {msg && <p class="error" data-testid="abort-message">{msg}</p>}
      <div class="waves">
        {r.waves.map((w, i) => (
          <div class="wave" key={i} data-testid="wave">
            <b>wave {i + 1}</b> ({w.percent}%): {waveState(r, w, i)}
            <ul>
              {w.devices.map((d) => (
                <li key={d}>
                  <a href={`#/device/${encodeURIComponent(d)}`}>{d}</a>: {w.results[d]?.result ?? "-"}
                  {w.results[d]?.error ? ` (${w.results[d]?.error})` : ""}
                </li>
              ))}
            </ul>
          </div>
        ))}
      </div>
    </div>
  );
}

export function Rollouts({ session }: { session: SessionInfo }) {
  const [tick, setTick] = useState(0);
  const [list, error] = usePoll(() => get<Rollout[]>("/api/rollouts"), 1_000, [tick]);
  return (
    <section>
      <h2>Rollouts</h2>
      {error && <p class="error">{error}</p>}
      {list && list.length === 0 && <p class="muted">no rollouts yet (canopy config rollout KEY VALUE --group G)</p>}
      {(list ?? []).map((r) => (
        <RolloutCard key={r.id} r={r} session={session} onChange={() => setTick((t) => t + 1)} />
      ))}
    </section>
  );
}
