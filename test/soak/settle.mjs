// A full garbage collection in a running node daemon through its inspector, so that two memory samples
// compare live memory, not two points of a GC cycle. An idle agent's heap climbs ~0.7 MiB a minute
// with garbage between major collections (measured: heapUsed 18.3 → 24.9 MiB in 9.5 min, back to
// 18.5 MiB after one full GC, RssAnon 40.5 → 35.0 MiB), which is more than a 5 % bound on its RSS.
// The daemons must run with NODE_OPTIONS=--inspect=127.0.0.1:0 (each prints its inspector URL).
import WebSocket from "ws";

/** The inspector URL a node process printed ("Debugger listening on ws://…"), or undefined. */
export function inspectorUrl(outputLines) {
  for (let i = outputLines.length - 1; i >= 0; i--) {
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(outputLines[i]);
    if (m) return m[1];
  }
  return undefined;
}

/** Runs HeapProfiler.collectGarbage in the process behind `url`; resolves false if that failed. */
export async function collectGarbage(url, timeoutMs = 10_000) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(ok) {
      clearTimeout(timer);
      ws.terminate();
      resolve(ok);
    }
    ws.once("error", () => finish(false));
    ws.once("open", () => ws.send(JSON.stringify({ id: 1, method: "HeapProfiler.collectGarbage" })));
    ws.on("message", (d) => {
      const m = JSON.parse(String(d));
      if (m.id === 1) finish(!m.error);
    });
  });
}
