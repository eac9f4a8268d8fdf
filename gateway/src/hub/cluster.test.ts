import { test } from "node:test";
import assert from "node:assert/strict";
import { CanopyError, renderHubConfig } from "@canopy/protocol";
import { clusterFromFlags, replicasFor } from "./cluster.js";

const ROUTES = "nats-route://127.0.0.1:6221,nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223";

test("a node drops its own route from the shared --routes list; replicas 3 on a 3-node cluster, 1 alone", () => {
  const c = clusterFromFlags({ serverName: "n2", clusterName: "canopy", clusterPort: "6222", routes: ROUTES }, "127.0.0.1");
  assert.deepEqual(c?.routes, ["nats-route://127.0.0.1:6221", "nats-route://127.0.0.1:6223"]);
  assert.equal(replicasFor(c), 3);
  assert.equal(replicasFor(undefined), 1);
  assert.equal(clusterFromFlags({}, "0.0.0.0"), undefined);
  // Listening on every address: loopback and this machine's own names are "self" too.
  const any = clusterFromFlags({ serverName: "n1", clusterName: "canopy", clusterPort: "6221", routes: `nats-route://localhost:6221,nats-route://hub2:6221` }, "0.0.0.0");
  assert.deepEqual(any?.routes, ["nats-route://hub2:6221"]);
  const tls = { certFile: "/c", keyFile: "/k", caFile: "/ca" };
  const auth = { operatorJwt: "o", systemAccount: "S", resolverDir: "/r", preload: {} };
  const conf = renderHubConfig({ storeDir: "/s", host: "127.0.0.1", port: 4222, leafPort: 7422, httpPort: 8222, maxFileStore: 1e9, serverName: "n2", auth, leafTls: tls, ...(c ? { cluster: c } : {}) });
  assert.match(conf, /server_name: "n2"/);
  assert.match(conf, /cluster \{\n  name: "canopy"\n  listen: "127.0.0.1:6222"\n  routes: \["nats-route:\/\/127.0.0.1:6221", "nats-route:\/\/127.0.0.1:6223"\]\n\}/);
});

test("cluster flags are checked at the door, the error names the flag", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ clusterName: "canopy", clusterPort: "6222", routes: ROUTES }, /--server-name is required/],
    [{ serverName: "n1", clusterPort: "6222", routes: ROUTES }, /--cluster-name is required/],
    [{ serverName: "n1", clusterName: "canopy", clusterPort: "99999", routes: ROUTES }, /--cluster-port must be a port/],
    [{ serverName: "n1", clusterName: "canopy", clusterPort: "6222" }, /--routes needs/],
    [{ serverName: "n1", clusterName: "canopy", clusterPort: "6222", routes: "nats://a:1" }, /--routes: "nats:\/\/a:1" is not nats-route/],
    [{ serverName: "bad name", clusterName: "canopy", clusterPort: "6222", routes: ROUTES }, /--server-name/],
  ];
  for (const [flags, re] of cases) {
    assert.throws(() => clusterFromFlags(flags, "127.0.0.1"), (err: unknown) => err instanceof CanopyError && err.isUsage && re.test(err.message), JSON.stringify(flags));
  }
});
