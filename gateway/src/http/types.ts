/**
 * Shapes the console's front end reads from the API. This file imports nothing, so the browser bundle
 * (gateway/console) can import its types without pulling in server code.
 */

/** One device as the fleet page shows it. */
export interface FleetRow {
  id: string;
  groups: string[];
  online: boolean;
  /** Hub receive time of the last status record (ms since epoch); null = never reported. */
  seenAt: number | null;
  heartbeatMs: number | null;
  os: string | null;
  agentVersion: string | null;
  /** Messages not yet in the hub (see `canopy backlog`); null = unknown. */
  backlog: number | null;
  mcus: number;
  mcusOnline: number;
  configRevision: number | null;
}

export type FleetChange = { kind: "snapshot"; rows: FleetRow[] } | { kind: "update"; rows: FleetRow[]; removed: string[] };

export interface TelemetrySeries {
  metric: string;
  /** Seconds since epoch (uPlot's x unit) and values, same length. */
  t: number[];
  v: number[];
  /** True when the window held more readings than the API returns (the newest are kept). */
  truncated: boolean;
}
