import { Subjects, errorMessage, type QueryFacts } from "@canopy/protocol";
import type { AgentContext } from "../context.js";
import { readUpBacklog } from "../up/backlog.js";
import { AGENT_VERSION } from "../version.js";
import { Cached } from "./cached.js";

/** LMDB `config` key where the config module keeps the applied config: `{ "<key>": value }`. */
export const EFFECTIVE_CONFIG_KEY = "effective";

type Mcu = QueryFacts["mcus"][number];

/**
 * The facts a query sees on a real device. Inventory comes from the presence sampler's cache; the
 * MCU list (asked of the firmware bridge on the leaf) and the UP backlog (local JetStream) are cached
 * for a few seconds so a burst of queries costs one lookup.
 */
export class AgentQueryFacts {
  private readonly mcus: Cached<Mcu[]>;
  private readonly up: Cached<QueryFacts["up"]>;

  constructor(
    private readonly ctx: AgentContext,
    private readonly groups: () => string[],
    opts: { ttlMs?: number; bridgeTimeoutMs?: number } = {},
  ) {
    const ttl = opts.ttlMs ?? 3_000;
    this.mcus = new Cached(() => this.askBridge(opts.bridgeTimeoutMs ?? 300), [], ttl);
    this.up = new Cached<QueryFacts["up"]>(async () => {
      const b = await readUpBacklog(ctx.jsm);
      return { messages: b.messages, bytes: b.bytes, full: b.full, ...(b.pending === undefined ? {} : { pending: b.pending }) };
    }, {}, ttl);
  }

  async snapshot(): Promise<QueryFacts> {
    const [mcus, up] = await Promise.all([this.mcus.get(), this.up.get()]);
    const f = this.ctx.facts.current;
    return {
      device: this.ctx.device,
      os: { ...f.os, ...(f.uptime === undefined ? {} : { uptime: f.uptime }) },
      cpu: { ...f.cpu },
      mem: { ...f.mem },
      disk: { ...f.disk },
      net: { ...f.net },
      agent: { version: AGENT_VERSION, uptime: Math.round(process.uptime()) },
      labels: [...this.groups()],
      config: this.effectiveConfig(),
      mcus,
      up,
    };
  }

  private effectiveConfig(): Record<string, unknown> {
    try {
      const v = this.ctx.state.config.get(EFFECTIVE_CONFIG_KEY);
      return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    } catch (err) {
      this.ctx.log.warn({ err: errorMessage(err) }, "query: cannot read effective config");
      return {};
    }
  }

  /** No bridge running → no responders → an empty list, at once. A slow bridge keeps the last list. */
  private async askBridge(timeoutMs: number): Promise<Mcu[]> {
    let data: unknown;
    try {
      data = (await this.ctx.nc.request(Subjects.localBridgeMcus, "", { timeout: timeoutMs })).json();
    } catch (err) {
      if (isNoResponders(err)) return [];
      throw err;
    }
    return parseMcus(data);
  }
}

export function parseMcus(data: unknown): Mcu[] {
  if (!Array.isArray(data)) return [];
  return data.flatMap((m: unknown) => {
    if (m === null || typeof m !== "object") return [];
    const r = m as Record<string, unknown>;
    if (typeof r.id !== "string") return [];
    return [{
      id: r.id,
      board: typeof r.board === "string" ? r.board : "",
      firmware: typeof r.firmware === "string" ? r.firmware : "",
      online: r.online === true,
    }];
  });
}

function isNoResponders(err: unknown): boolean {
  const e = err as { isNoResponders?: () => boolean; name?: string; cause?: unknown };
  if (typeof e?.isNoResponders === "function" && e.isNoResponders()) return true;
  return e?.name === "NoRespondersError" || (e?.cause as { name?: string } | undefined)?.name === "NoRespondersError";
}
