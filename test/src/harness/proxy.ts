import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A TCP relay on loopback between a leaf and the hub, so tests can cut the device's link (both
 * directions, existing sockets destroyed, new ones refused) and restore it, without killing either
 * server.
 */
export class LinkProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private up = true;
  port = 0;
  /** Bytes relayed leaf → hub and hub → leaf (what the link carries, compressed or not). */
  bytesUp = 0;
  bytesDown = 0;

  /** `delayMs`: each direction holds every chunk that long (RTT = 2 × delayMs), as a cellular link. */
  constructor(
    private readonly targetPort: number,
    private readonly targetHost = "127.0.0.1",
    private readonly delayMs = 0,
  ) {}

  async start(port = 0): Promise<number> {
    const server = createServer((client) => {
      if (!this.up) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      // As nats-server's own sockets: without it Nagle holds a small write until the peer's delayed
      // ACK (40 ms), which made a second message on the link in the same millisecond cost 40 ms.
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.track(client);
      this.track(upstream);
      this.relay(client, upstream, (n) => (this.bytesUp += n));
      this.relay(upstream, client, (n) => (this.bytesDown += n));
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const addr = server.address();
    this.port = typeof addr === "object" && addr ? addr.port : 0;
    return this.port;
  }

  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private relay(from: Socket, to: Socket, count: (n: number) => void): void {
    if (this.delayMs <= 0) {
      from.on("data", (d: Buffer) => count(d.length));
      from.pipe(to);
      return;
    }
    // Same delay for every chunk: order is kept. No backpressure: for benches on loopback only.
    from.on("data", (d: Buffer) => {
      count(d.length);
      setTimeout(() => to.destroyed || to.write(d), this.delayMs);
    });
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
  }
}
