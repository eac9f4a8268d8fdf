/** The console's only way to the hub: its JSON API, same origin, the session cookie attached. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function check<T>(res: Response): Promise<T> {
  if (res.ok) return (await res.json()) as T;
  let code = "HTTP_" + res.status;
  let message = res.statusText;
  try {
    const body = (await res.json()) as { error?: { code: string; message: string } };
    if (body.error) ({ code, message } = body.error);
  } catch {
    /* not JSON */
  }
  if (res.status === 401) window.dispatchEvent(new Event("canopy:logout"));
  throw new ApiError(res.status, code, message);
}

export function get<T>(path: string): Promise<T> {
  return fetch(path, { credentials: "same-origin" }).then((r) => check<T>(r));
}

export function post<T>(path: string, body: unknown): Promise<T> {
  return fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }).then((r) => check<T>(r));
}

/** POSTs and hands each NDJSON line to `onLine` as it arrives. */
export async function postStream(path: string, body: unknown, onLine: (v: unknown) => void, signal?: AbortSignal): Promise<void> {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  if (!res.ok || !res.body) {
    await check(res);
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
}

export interface SessionInfo {
  id: string;
  readOnly: boolean;
  expiresAt: number;
}

export function age(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
