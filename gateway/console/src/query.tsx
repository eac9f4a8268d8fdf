import { useRef, useState } from "preact/hooks";
import { age, postStream } from "./api.js";

interface Answer {
  device: string;
  matched: boolean;
  latencyMs: number;
  error?: { code: string; message: string };
  facts?: Record<string, unknown>;
}

interface Silent {
  device: string;
  expected: boolean;
  factsAgeMs?: number;
}

interface Summary {
  targeted: number;
  expected: number;
  answered: number;
  matched: number;
  silent: number;
  elapsedMs: number;
  timedOut: boolean;
}

type Line = { type: "answer"; answer: Answer } | { type: "done"; silent: Silent[]; summary: Summary } | { type: "error"; error: { message: string } };

function brief(facts: Record<string, unknown> | undefined): string {
  const os = facts?.os as { distro?: string; release?: string } | undefined;
  const agent = facts?.agent as { version?: string } | undefined;
  return [os?.distro, os?.release, agent?.version ? `agent ${agent.version}` : ""].filter(Boolean).join(" ");
}

/** A CEL expression evaluated on the devices now; answers appear as they arrive. */
export function Query() {
  const [expr, setExpr] = useState('os.platform == "linux"');
  const [group, setGroup] = useState("");
  const [answers, setAnswers] = useState<Answer[]>([]);
  const [silent, setSilent] = useState<Silent[]>([]);
  const [summary, setSummary] = useState<Summary | null>(null);
  const [error, setError] = useState("");
  const [running, setRunning] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const run = (e: Event): void => {
    e.preventDefault();
    abort.current?.abort();
    const ac = new AbortController();
    abort.current = ac;
    setAnswers([]);
    setSilent([]);
    setSummary(null);
    setError("");
    setRunning(true);
    postStream(
      "/api/query",
      { expr, group: group || undefined, timeoutMs: 3_000 },
      (v) => {
        const l = v as Line;
        if (l.type === "answer") setAnswers((a) => [...a, l.answer]);
        else if (l.type === "done") {
          setSilent(l.silent);
          setSummary(l.summary);
        } else setError(l.error.message);
      },
      ac.signal,
    )
      .catch((err: Error) => setError(err.message))
      .finally(() => setRunning(false));
  };
  const matched = answers.filter((a) => a.matched);
  return (
    <section>
      <h2>Query</h2>
      <form class="toolbar" onSubmit={run}>
        <input class="grow" value={expr} onInput={(e) => setExpr((e.target as HTMLInputElement).value)} data-testid="query-expr" placeholder="CEL, e.g. mem.available < 200e6" />
        <input value={group} onInput={(e) => setGroup((e.target as HTMLInputElement).value)} placeholder="group (optional)" size={14} />
        <button type="submit" disabled={running} data-testid="query-run">{running ? "asking…" : "Run"}</button>
      </form>
      {error && <p class="error" data-testid="query-error">{error}</p>}
      <p class="muted" data-testid="query-summary">
        {summary
          ? `${summary.answered} answered (${summary.expected} of ${summary.targeted} online), ${summary.matched} matched, ${summary.silent} silent, ${summary.elapsedMs} ms${summary.timedOut ? " (timed out)" : ""}`
          : running ? `${answers.length} answers so far…` : ""}
      </p>
      <table class="grid">
        <thead><tr><th>Device</th><th>Result</th><th>Latency</th><th>Facts</th></tr></thead>
        <tbody>
          {answers.map((a) => (
            <tr key={a.device} data-testid="query-answer" data-matched={String(a.matched)}>
              <td><a href={`#/device/${encodeURIComponent(a.device)}`}>{a.device}</a></td>
              <td>{a.error ? `error: ${a.error.message}` : a.matched ? "match" : "no match"}</td>
              <td class="num">{a.latencyMs} ms</td>
              <td>{brief(a.facts)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {silent.length > 0 && (
        <>
          <h3>Silent devices</h3>
          <table class="grid">
            <thead><tr><th>Device</th><th>Presence</th><th>Last facts</th></tr></thead>
            <tbody>
              {silent.map((s) => (
                <tr key={s.device} data-testid="query-silent">
                  <td>{s.device}</td>
                  <td>{s.expected ? "online but silent" : "offline"}</td>
                  <td>{s.factsAgeMs === undefined ? "never reported" : `${age(s.factsAgeMs)} old`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <p class="muted">{matched.length} matching device(s)</p>
    </section>
  );
}
