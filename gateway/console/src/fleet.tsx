import { useEffect, useMemo, useState } from "preact/hooks";
import type { FleetChange, FleetRow } from "../../src/http/types.js";
import { age } from "./api.js";

type SortKey = "id" | "state" | "seen" | "os" | "agent" | "backlog" | "mcus" | "config";

const COLUMNS: Array<[SortKey, string]> = [
  ["id", "Device"],
  ["state", "State"],
  ["seen", "Last seen"],
  ["os", "OS"],
  ["agent", "Agent"],
  ["backlog", "Backlog"],
  ["mcus", "MCUs"],
  ["config", "Config rev"],
];

function sortValue(r: FleetRow, k: SortKey): string | number {
  switch (k) {
    case "id":
      return r.id;
    case "state":
      return r.online ? 0 : 1;
    case "seen":
      return -(r.seenAt ?? 0);
    case "os":
      return r.os ?? "";
    case "agent":
      return r.agentVersion ?? "";
    case "backlog":
      return r.backlog ?? -1;
    case "mcus":
      return r.mcus;
    case "config":
      return r.configRevision ?? -1;
  }
}

/** Live fleet: a snapshot then changed rows over server-sent events; no reload needed. */
function useFleet(): { rows: Map<string, FleetRow>; live: boolean } {
  const [rows, setRows] = useState<Map<string, FleetRow>>(new Map());
  const [live, setLive] = useState(false);
  useEffect(() => {
    const es = new EventSource("/api/fleet/events");
    const apply = (e: MessageEvent<string>): void => {
      const c = JSON.parse(e.data) as FleetChange;
      setRows((prev) => {
        const next = c.kind === "snapshot" ? new Map<string, FleetRow>() : new Map(prev);
        for (const r of c.rows) next.set(r.id, r);
        if (c.kind === "update") for (const id of c.removed) next.delete(id);
        return next;
      });
    };
    es.addEventListener("snapshot", apply);
    es.addEventListener("update", apply);
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    return () => es.close();
  }, []);
  return { rows, live };
}

export function Fleet() {
  const { rows, live } = useFleet();
  const [filter, setFilter] = useState("");
  const [state, setState] = useState("all");
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: "id", dir: 1 });
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(t);
  }, []);
  const all = [...rows.values()];
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return all
      .filter((r) => state === "all" || (state === "online") === r.online)
      .filter((r) => !f || [r.id, r.os ?? "", r.agentVersion ?? "", ...r.groups].some((s) => s.toLowerCase().includes(f)))
      .sort((a, b) => {
        const x = sortValue(a, sort.key);
        const y = sortValue(b, sort.key);
        return (x < y ? -1 : x > y ? 1 : a.id.localeCompare(b.id)) * sort.dir;
      });
  }, [rows, filter, state, sort]);
  const online = all.filter((r) => r.online).length;
  return (
    <section>
      <div class="toolbar">
        <h2>Fleet</h2>
        <span data-testid="fleet-summary">
          {online}/{all.length} online
        </span>
        <span class={live ? "dot on" : "dot"} title={live ? "live" : "reconnecting"} data-testid="fleet-live" data-live={String(live)} />
        <span class="grow" />
        <input placeholder="filter: id, group, OS, version" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} data-testid="fleet-filter" />
        <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
          <option value="all">all</option>
          <option value="online">online</option>
          <option value="offline">offline</option>
        </select>
      </div>
      <table class="grid">
        <thead>
          <tr>
            {COLUMNS.map(([key, label]) => (
              <th key={key} onClick={() => setSort((s) => ({ key, dir: s.key === key ? (s.dir === 1 ? -1 : 1) : 1 }))} class="sortable">
                {label}
                {sort.key === key ? (sort.dir === 1 ? " ▲" : " ▼") : ""}
              </th>
            ))}
            <th>Groups</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.id} data-testid="fleet-row" data-device={r.id} data-state={r.online ? "online" : "offline"}>
              <td>
                <a href={`#/device/${encodeURIComponent(r.id)}`}>{r.id}</a>
              </td>
              <td>
                <span class={r.online ? "state on" : "state off"}>{r.online ? "online" : "offline"}</span>
              </td>
              <td>{r.seenAt === null ? "never" : `${age(now - r.seenAt)} ago`}</td>
              <td>{r.os ?? "-"}</td>
              <td>{r.agentVersion ?? "-"}</td>
              <td class="num">{r.backlog ?? "?"}</td>
              <td class="num">{r.mcus ? `${r.mcusOnline}/${r.mcus}` : "0"}</td>
              <td class="num">{r.configRevision ?? "-"}</td>
              <td>{r.groups.join(", ") || "-"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown.length === 0 && <p class="muted">{all.length === 0 ? "no devices enrolled" : "no device matches the filter"}</p>}
    </section>
  );
}
