import type { Subscription } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import {
  Assets,
  Backoff,
  LOCAL_CONFIG_RELOAD,
  Subjects,
  errorMessage,
  sleep,
  type ConfigReloadReply,
  type DeviceStatus,
} from "@canopy/protocol";
import type { AgentContext, AgentModule } from "../context.js";
import type { Logger } from "../logging.js";
import { ConfigEngine, type ConfigChange } from "./engine.js";
import { LmdbConfigStore } from "./store.js";
import { LiveSettings } from "./live.js";
import { AppConfigWriter } from "./apps.js";

/**
 * Remote config on the device: a filtered mirror of hub KV `cfg` on the leaf (it keeps delivering
 * while the link is down and catches up after days offline), watched and applied by the engine.
 * Boots from the LMDB copy of what last ran, so a device without its hub starts configured.
 */
export class ConfigModule implements AgentModule {
  readonly name = "config";
  private engine: ConfigEngine | undefined;
  private live: LiveSettings | undefined;
  private kv: KV | undefined;
  private sub: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private device = "";

  async start(ctx: AgentContext): Promise<void> {
    const log = ctx.log.child({ component: "config" });
    this.device = ctx.device;
    const live = new LiveSettings(ctx.device, ctx.options, ctx.jsm, ctx.log, ctx.leafMaxFileStore);
    const apps = new AppConfigWriter(ctx.options.data, ctx.nc);
    this.live = live;
    this.engine = new ConfigEngine({
      store: new LmdbConfigStore(ctx.state.config, () => ctx.state.durable()),
      applyLive: (key, value) => live.apply(key, value),
      deliver: (settings, changed, revision) => apps.deliver(settings, changed, revision),
      report: (event) => {
        ctx.publisher.publish(Subjects.configEvent(ctx.device), JSON.stringify(event)).catch(() => {
          /* queued in the outbox; retried in the background */
        });
      },
      changed: () => ctx.reportNow(),
      log,
    });
    await this.engine.boot();
    const signal = AbortSignal.any([ctx.signal, this.abort.signal]);
    this.sub = ctx.nc.subscribe(LOCAL_CONFIG_RELOAD, {
      callback: (_err, msg) => {
        void this.reload().then(
          (reply) => msg.respond(JSON.stringify(reply)),
          (err: unknown) => msg.respond(JSON.stringify({ error: { code: "UNAVAILABLE", message: errorMessage(err) } })),
        );
      },
    });
    this.loop = this.watchLoop(ctx, log, signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.sub?.unsubscribe();
    await this.loop;
  }

  /** An arrow property: main.ts hands `status` to the reporter unbound. */
  readonly status = (): Partial<DeviceStatus> => {
    const a = this.engine?.applied;
    if (!a) return {};
    const hb = this.live?.heartbeatOverrideMs;
    return {
      config: { revision: a.revision, ...(a.appliedAt === undefined ? {} : { appliedAt: a.appliedAt }), keys: a.keys },
      ...(hb === undefined ? {} : { heartbeatMs: hb }),
    };
  };

  /** Re-applies everything in the mirror (the `config.reload` command); reports only new revisions. */
  async reload(): Promise<ConfigReloadReply> {
    if (!this.kv || !this.engine) throw new Error("config mirror not ready yet");
    const entries: ConfigChange[] = [];
    for await (const k of await this.kv.keys(`${this.device}.>`)) {
      const e = await this.kv.get(k);
      if (e) entries.push(toChange(e, this.device));
    }
    const { failed } = await this.engine.reconcile(entries);
    return { revision: this.engine.applied.revision, keys: entries.length, failed };
  }

  private async watchLoop(ctx: AgentContext, log: Logger, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
    while (!signal.aborted) {
      try {
        // create() with the same options every time: Kvm.open() on a mirror is broken in kv 3.4.
        this.kv ??= await new Kvm(ctx.nc).create(Assets.kvConfig, {
          mirror: {
            name: Assets.kvConfig,
            filter_subject: Subjects.configKvFilter(ctx.device),
            external: { api: Subjects.hubJsApi, deliver: Subjects.mirrorDeliver(ctx.device) },
          },
        });
        const iter = await this.kv.watch({ key: `${ctx.device}.>` });
        const onAbort = (): void => iter.stop();
        signal.addEventListener("abort", onAbort, { once: true });
        backoff.reset();
        for await (const e of iter) {
          await this.engine?.handle(toChange(e, ctx.device)).catch((err) => log.error({ key: e.key, err: errorMessage(err) }, "config apply crashed"));
        }
        signal.removeEventListener("abort", onAbort);
        // The watch ended without a stop (leaf restarted, consumer gone): watch again, paced.
        if (!signal.aborted) await sleep(backoff.next(), signal);
      } catch (err) {
        if (signal.aborted) break;
        const wait = backoff.next();
        log.warn({ err: errorMessage(err), retryInMs: wait }, "config mirror watch failed; retrying");
        await sleep(wait, signal);
      }
    }
  }
}

function toChange(e: KvEntry, device: string): ConfigChange {
  return {
    key: e.key.slice(device.length + 1),
    revision: e.revision,
    operation: e.operation,
    ...(e.operation === "PUT" ? { data: e.value } : {}),
  };
}
