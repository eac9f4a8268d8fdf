// Shared by the MQTT benches: `clients` mqtt.js clients, each `perClient` QoS 1 publishes with
// `window` in flight. Resolves to publishes/s over all PUBACKs.
import mqtt from "mqtt";

export async function qos1Load(port, { clients, perClient, window, clientId, topic, payload }) {
  const cs = await Promise.all(
    Array.from({ length: clients }, (_, i) => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: clientId(i), reconnectPeriod: 0, clean: true })),
  );
  const started = process.hrtime.bigint();
  await Promise.all(
    cs.map(async (c, i) => {
      let next = 0;
      const lane = async () => {
        while (next < perClient) {
          next++;
          await c.publishAsync(topic(i), payload, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: window }, lane));
    }),
  );
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(cs.map((c) => c.endAsync()));
  return (clients * perClient) / secs;
}
