// Shared by the fleet benches: the hub nats-server's own figures from its monitoring port.

export async function varz(http) {
  const r = await fetch(`${http}/varz`);
  return r.json();
}

/** Samples /varz every 250 ms until stopped; keeps the peak RSS (bytes) and CPU (% of one core). */
export function sampler(http) {
  const peak = { mem: 0, cpu: 0, samples: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const v = await varz(http);
        peak.mem = Math.max(peak.mem, v.mem ?? 0);
        peak.cpu = Math.max(peak.cpu, v.cpu ?? 0);
        peak.samples++;
      } catch {
        /* hub down, starting or busy */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    peak,
    reset() {
      Object.assign(peak, { mem: 0, cpu: 0, samples: 0 });
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
