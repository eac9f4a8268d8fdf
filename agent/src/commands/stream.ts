import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerInfo,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Assets, Subjects } from "@canopy/protocol";
import type { AgentState } from "../state/store.js";

const DAY_NS = 86_400e9;
/** Handlers may run for minutes: every held message gets a progress ack every ACK_WAIT/3. */
export const ACK_WAIT_MS = 60_000;
/** How far the agent reads ahead of the command it runs (held messages get progress acks). */
export const MAX_ACK_PENDING = 256;
const RESUME_KEY = "cmd.resumeSeq";

/**
 * The leaf's `CMD`: a mirror of the hub's `CMD` filtered to this device (`cmd.<dev>.>`), so commands
 * sent while the device is offline arrive when the link returns. Created once; kept as is after.
 */
export async function ensureCmdMirror(jsm: JetStreamManager, device: string, maxBytes = 64 * 2 ** 20): Promise<void> {
  try {
    await jsm.streams.info(Assets.cmdStream);
    return;
  } catch {
    /* missing: create */
  }
  await jsm.streams.add({
    name: Assets.cmdStream,
    // The hub's API and this device's own deliver prefix: its credentials allow exactly these.
    mirror: {
      name: Assets.cmdStream,
      filter_subject: Subjects.cmdAll(device),
      external: { api: Subjects.hubJsApi, deliver: Subjects.mirrorDeliver(device) },
    },
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: 30 * DAY_NS,
    max_bytes: maxBytes,
  });
}

/**
 * The local durable consumer `agent`. A pull consumer's delivered-but-unacked messages are only
 * redelivered after ack_wait, and newer ones would be delivered first; so when a previous run left
 * messages unacked (crash, stop with a queue), the consumer is recreated at its ack floor + 1: order
 * is kept and nothing waits for ack_wait. Commands above the floor that were already acked come again
 * and are answered from the journal. The resume point is saved first in case we die in between.
 */
export async function ensureAgentConsumer(jsm: JetStreamManager, state: AgentState): Promise<{ recreated: boolean; startSeq?: number }> {
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(Assets.cmdStream, Assets.cmdConsumer);
  } catch {
    info = undefined;
  }
  if (info && info.num_ack_pending === 0 && info.config.ack_policy === AckPolicy.Explicit) return { recreated: false };
  let startSeq = state.meta.get(RESUME_KEY) as number | undefined;
  if (info) {
    startSeq = info.ack_floor.stream_seq + 1;
    void state.meta.put(RESUME_KEY, startSeq);
    await state.durable();
    await jsm.consumers.delete(Assets.cmdStream, Assets.cmdConsumer);
  }
  await jsm.consumers.add(Assets.cmdStream, {
    durable_name: Assets.cmdConsumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ACK_WAIT_MS * 1e6,
    max_deliver: -1,
    max_ack_pending: MAX_ACK_PENDING,
    ...(startSeq ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq } : { deliver_policy: DeliverPolicy.All }),
  });
  return startSeq ? { recreated: true, startSeq } : { recreated: true };
}
