import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import type { TelemetrySeries } from "../../src/http/types.js";
import { get } from "./api.js";

/**
 * One metric of one device over the last hour or day, read from the hub shards. uPlot draws to a
 * canvas (a hundred thousand points stay smooth); drag to zoom, double-click to reset.
 */
export function Plot({ device }: { device: string }) {
  const [metrics, setMetrics] = useState<Array<{ metric: string; count: number }>>([]);
  const [metric, setMetric] = useState("");
  const [since, setSince] = useState("1h");
  const [data, setData] = useState<TelemetrySeries | null>(null);
  const [error, setError] = useState("");
  const box = useRef<HTMLDivElement>(null);
  const dev = encodeURIComponent(device);

  useEffect(() => {
    get<Array<{ metric: string; count: number }>>(`/api/devices/${dev}/metrics`).then((m) => {
      setMetrics(m);
      setMetric((cur) => cur || (m[0]?.metric ?? ""));
    }, (e: Error) => setError(e.message));
  }, [device]);

  useEffect(() => {
    if (!metric) return;
    setData(null);
    get<TelemetrySeries>(`/api/devices/${dev}/telemetry?metric=${encodeURIComponent(metric)}&since=${since}`).then(setData, (e: Error) => setError(e.message));
  }, [device, metric, since]);

  useEffect(() => {
    const el = box.current;
    if (!el || !data) return;
    const plot = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: 260,
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: true } },
        series: [{}, { label: data.metric, stroke: "#2b7a4b", width: 1, points: { show: false } }],
        axes: [{}, { size: 60 }],
      },
      [data.t, data.v],
      el,
    );
    const onResize = (): void => plot.setSize({ width: Math.max(300, el.clientWidth), height: 260 });
    window.addEventListener("resize", onResize);
    return () => {
      window.removeEventListener("resize", onResize);
      plot.destroy();
    };
  }, [data]);

  return (
    <div class="card">
      <div class="toolbar">
        <h3>Telemetry</h3>
        <select value={metric} onChange={(e) => setMetric((e.target as HTMLSelectElement).value)} data-testid="metric-select">
          {metrics.length === 0 && <option value="">no telemetry</option>}
          {metrics.map((m) => (
            <option key={m.metric} value={m.metric}>
              {m.metric} ({m.count})
            </option>
          ))}
        </select>
        <select value={since} onChange={(e) => setSince((e.target as HTMLSelectElement).value)}>
          <option value="1h">last hour</option>
          <option value="1d">last day</option>
        </select>
        <span class="muted" data-testid="plot-points" data-points={String(data?.t.length ?? 0)}>
          {data ? `${data.t.length} points${data.truncated ? " (newest kept)" : ""}` : metric ? "loading…" : ""}
        </span>
      </div>
      {error && <p class="error">{error}</p>}
      <div ref={box} class="plot" data-testid="plot" />
    </div>
  );
}
