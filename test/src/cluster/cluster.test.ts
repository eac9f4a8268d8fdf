import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { checkSequence, countIn, publishSeries, readShard, waitForCount } from "../harness/index.js";
import { HubCluster } from "./hub-cluster.js";

/**
 * A 3-node hub cluster on loopback (every Canopy stream and bucket at 3 replicas) and 2 agents that
 * know every node's leaf URL: the shard leader's node SIGKILLed mid-stream loses nothing.
 * (cluster-restarts.test.ts: config and commands with a node down, a rolling restart.)
 */
const SHARD = "FLEET_UP_0";
const figures: Record<string, number> = {};
let cluster: HubCluster;
let hub: NatsConnection;
let jsm: JetStreamManager;

before(async () => {
  ({ cluster, hub, jsm } = await HubCluster.withAgents());
});

after(async () => {
  process.stdout.write(`# cluster figures: ${JSON.stringify(figures)}\n`);
  await cluster?.stop();
});

const leaderOf = (stream: string): Promise<string> => cluster.leaderOf(jsm, stream);
const replicasCurrent = (stream: string): Promise<void> => cluster.replicasCurrent(jsm, stream);

test("every Canopy stream and bucket has 3 replicas", async () => {
  const names: string[] = [];
  for await (const si of jsm.streams.list()) {
    assert.equal(si.config.num_replicas, 3, `${si.config.name} has ${si.config.num_replicas} replicas`);
    names.push(si.config.name);
  }
  for (const n of ["KV_identity", "KV_devices", "KV_status", "KV_cfg", "KV_cfg-src", "KV_commands", "KV_leases", "CMD", "OBJ_firmware", SHARD]) {
    assert.ok(names.includes(n), `${n} missing (have ${names.join(", ")})`);
  }
});

test("10,000 messages while the shard's leader node is SIGKILLed and later restarted → exactly 10,000 in order", async () => {
  const victimName = await leaderOf(SHARD);
  const victim = cluster.nodeIndex(victimName);
  const leaf = await cluster.leafConnection("d1");
  const subject = "up.d1.tlm.seq";
  let killedAt = 0;
  let killing: Promise<void> | undefined;
  const acked = await publishSeries(leaf, {
    device: "d1",
    subject,
    count: 10_000,
    window: 20,
    retryUntil: Date.now() + 60_000,
    onAck: (i) => {
      if (!killing && i >= 3_000) {
        killedAt = Date.now();
        killing = cluster.kill(victim);
      }
    },
  });
  await killing;
  assert.equal(acked.size, 10_000, "every publish to the device's leaf was acked");
  const newLeader = await leaderOf(SHARD);
  assert.notEqual(newLeader, victimName);
  figures.newLeaderSeenMsAfterKill = Date.now() - killedAt;
  await waitForCount(hub, SHARD, subject, 10_000, 120_000);
  figures.all10kInHubMsAfterKill = Date.now() - killedAt;

  const restartAt = Date.now();
  await cluster.startNode(victim);
  await replicasCurrent(SHARD);
  figures.restartedNodeCurrentMs = Date.now() - restartAt;
  const got = await readShard(hub, SHARD, subject);
  const expected = Array.from({ length: 10_000 }, (_, i) => i);
  assert.equal(checkSequence(got, expected), undefined);
  assert.equal(await countIn(hub, SHARD, subject), 10_000);
});

