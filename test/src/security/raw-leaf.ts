import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { fromSeed } from "@nats-io/nkeys";
import { waitFor } from "@canopy/protocol";

/**
 * A hand-written leafnode-protocol client: the stronger attacker of the rogue-device tests. It holds a
 * device's credentials and TLS client certificate and speaks the leaf protocol directly (CONNECT with
 * JWT + nonce signature, LS+ to ask for messages, LMSG to send them), so nothing on its side filters
 * what it sends: whatever is refused is refused by the hub.
 */
export class RawLeaf {
  readonly errors: string[] = [];
  /** Subjects of the LMSGs the hub delivered to us. */
  readonly received: string[] = [];
  private buffer = "";
  private closedFlag = false;

  private constructor(private readonly socket: TLSSocket) {
    socket.on("data", (d: Buffer) => this.onData(d.toString("latin1")));
    socket.on("close", () => (this.closedFlag = true));
    socket.on("error", () => (this.closedFlag = true));
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  static async connect(port: number, auth: { creds: string; ca: string; cert: string; key: string }): Promise<RawLeaf> {
    const plain: Socket = netConnect(port, "127.0.0.1");
    const info = await new Promise<{ nonce?: string }>((resolve, reject) => {
      let text = "";
      plain.on("data", function onData(d: Buffer) {
        text += d.toString("latin1");
        const end = text.indexOf("\r\n");
        if (end < 0) return;
        plain.off("data", onData);
        resolve(JSON.parse(text.slice(5, end)) as { nonce?: string });
      });
      plain.once("error", reject);
    });
    const socket = tlsConnect({ socket: plain, ca: auth.ca, cert: auth.cert, key: auth.key, servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
    const jwt = /-----BEGIN NATS USER JWT-----\s*(\S+)\s*------END/.exec(auth.creds)?.[1] ?? "";
    const seed = /-----BEGIN USER NKEY SEED-----\s*(\S+)\s*------END/.exec(auth.creds)?.[1] ?? "";
    const kp = fromSeed(new TextEncoder().encode(seed));
    const sig = Buffer.from(kp.sign(new TextEncoder().encode(info.nonce ?? ""))).toString("base64url");
    const leaf = new RawLeaf(socket);
    leaf.send(`CONNECT ${JSON.stringify({ jwt, sig, tls_required: true, name: "rogue", headers: true, hub: false, cluster: "edge", proto: 1 })}\r\nPING\r\n`);
    await waitFor(() => leaf.pongs > 0 || leaf.closed || leaf.errors.length > 0, { timeoutMs: 10_000, what: "the hub's answer to CONNECT" });
    return leaf;
  }

  private pongs = 0;

  send(text: string): void {
    if (!this.closedFlag) this.socket.write(text);
  }

  /** Publishes across the link as a leaf would (LMSG), optionally with a reply subject. */
  publish(subject: string, payload: string, reply?: string): void {
    const size = Buffer.byteLength(payload);
    this.send(`LMSG ${subject} ${reply ? `${reply} ` : ""}${size}\r\n${payload}\r\n`);
  }

  /** Asks the hub for messages on `subject` (LS+). */
  subscribe(subject: string): void {
    this.send(`LS+ ${subject}\r\n`);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const end = this.buffer.indexOf("\r\n");
      if (end < 0) return;
      const line = this.buffer.slice(0, end);
      if (line.startsWith("LMSG ")) {
        const parts = line.split(" ");
        const size = Number(parts.at(-1));
        if (this.buffer.length < end + 2 + size + 2) return;
        this.received.push(parts[1] ?? "");
        this.buffer = this.buffer.slice(end + 2 + size + 2);
        continue;
      }
      this.buffer = this.buffer.slice(end + 2);
      if (line === "PING") this.send("PONG\r\n");
      else if (line === "PONG") this.pongs++;
      else if (line.startsWith("-ERR")) this.errors.push(line);
    }
  }
}
