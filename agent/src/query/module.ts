import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import { Subjects, errorMessage } from "@canopy/protocol";
import type { AgentContext, AgentModule } from "../context.js";
import type { Logger } from "../logging.js";
import { AGENT_VERSION } from "../version.js";
import { QueryCompiler } from "./cel.js";
import { AgentQueryFacts } from "./facts.js";
import { GroupTracker } from "./groups.js";
import { QueryResponder } from "./responder.js";

export const SERVICE_NAME = "canopy-agent";

/** The subjects one device answers queries on: `[endpoint name, subject]`. */
export function querySubjects(device: string, groups: string[]): [string, string][] {
  return [
    ["all", Subjects.queryAll],
    ["device", Subjects.queryDevice(device)],
    ...groups.map((g): [string, string] => [`group-${g}`, Subjects.queryGroup(g)]),
  ];
}

/**
 * Live queries. The agent registers a NATS micro service `canopy-agent` (so `$SRV.PING/INFO/STATS`
 * discover it) whose endpoints are `q.all`, `q.dev.<dev>` and `q.group.<g>` for each of its groups,
 * all without a queue group: every device must answer a fan-out. When the registry changes the
 * groups, a new service instance is started before the old one stops, so no query falls in a gap
 * (the collector drops the duplicate answer).
 */
export class QueryModule implements AgentModule {
  readonly name = "query";
  private ctx: AgentContext | undefined;
  private tracker: GroupTracker | undefined;
  private responder: QueryResponder | undefined;
  private service: Service | undefined;
  private serving: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private log: Logger | undefined;

  readonly status = (): { groups: string[] } => ({ groups: this.tracker?.current ?? [] });

  async start(ctx: AgentContext): Promise<void> {
    this.ctx = ctx;
    const log = (this.log = ctx.log.child({ component: "query" }));
    const tracker = (this.tracker = new GroupTracker(ctx.device, ctx.nc, ctx.state.meta, log, (g) => this.serve(g)));
    const facts = new AgentQueryFacts(ctx, () => tracker.current);
    this.responder = new QueryResponder(ctx.device, () => facts.snapshot(), new QueryCompiler());
    await this.serve(tracker.current);
    const signal = AbortSignal.any([ctx.signal, this.abort.signal]);
    this.loop = tracker.run(signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.serving;
    await this.service?.stop().catch(() => null);
  }

  /** Serialized: group changes apply in order. */
  private serve(groups: string[]): Promise<void> {
    this.serving = this.serving.then(() => this.replaceService(groups)).catch((err) => {
      this.log?.error({ err: errorMessage(err) }, "query service could not be (re)started");
    });
    return this.serving;
  }

  private async replaceService(groups: string[]): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || this.abort.signal.aborted) return;
    const svc = await new Svcm(ctx.nc).add({
      name: SERVICE_NAME,
      version: AGENT_VERSION,
      description: "Canopy device agent: live fleet queries",
      metadata: { device: ctx.device, groups: groups.join(",") },
      queue: "",
    });
    for (const [name, subject] of querySubjects(ctx.device, groups)) {
      svc.addEndpoint(name, { subject, queue: "", handler: (err, msg) => this.handle(err, msg) });
    }
    const old = this.service;
    this.service = svc;
    await old?.stop().catch(() => null);
    this.log?.info({ groups }, "answering queries");
  }

  private handle(err: Error | null, msg: ServiceMsg): void {
    const nc = this.ctx?.nc;
    if (err || !this.responder || !nc) return;
    this.responder.answerOn(msg.data).then(
      (out) => {
        if (!out) return;
        nc.publish(out.subject, out.data);
        // A requester on this leaf (a device app) gets the answer on its inbox too; across the hub that
        // inbox is never reachable: the device's credentials do not allow operator inboxes.
        if (msg.reply) msg.respond(out.data);
      },
      (e) => this.log?.warn({ err: errorMessage(e) }, "query answer failed"),
    );
  }
}
