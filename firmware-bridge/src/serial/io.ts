import { stat } from "node:fs/promises";
import { SerialPort, SerialPortMock } from "serialport";
import { LinkError } from "../errors.js";
import { isPolledPort, readOnLoop } from "./loop-read.js";

/**
 * The hardware seam: everything above talks to this small interface, so unit tests run the same link
 * code against serialport's mock binding and e2e tests against socat ptys (real serialport I/O).
 */
export interface SerialConnection {
  readonly path: string;
  write(data: Uint8Array | string): Promise<void>;
  onData(cb: (chunk: Buffer) => void): void;
  /** Resolves once the port is gone (unplug, I/O error, close()), with the cause if there was one. */
  readonly closed: Promise<Error | undefined>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * While bytes keep coming, read at most once per this many ms (default 0: every wake-up). Each read
   * starts a round of work downstream (an LMDB commit, a JetStream batch, a link-ack write), so fewer,
   * fuller reads cost less CPU per frame; it delays a byte that follows a read by at most this.
   */
  readGapMs?: number;
}

export interface SerialIo {
  open(path: string, baudRate: number, signal?: AbortSignal, options?: OpenOptions): Promise<SerialConnection>;
}

type PortLike = SerialPort | SerialPortMock;

const CLOSE_WAIT_MS = 3_000;

class StreamConnection implements SerialConnection {
  readonly closed: Promise<Error | undefined>;
  private dataCb: ((chunk: Buffer) => void) | undefined;
  private settle!: (why: Error | undefined) => void;
  private lastErr: Error | undefined;

  constructor(readonly path: string, private readonly port: PortLike, readGapMs = 0) {
    this.closed = new Promise((resolve) => (this.settle = resolve));
    port.on("error", (err: Error) => {
      this.lastErr = err;
      // An I/O error on a pty or an unplugged USB CDC device: make sure the port is closed so the
      // link supervisor reconnects.
      void this.close();
    });
    port.on("close", (err?: Error | null) => this.settle(err ?? this.lastErr));
    // A native port is read on the event loop (see readOnLoop); serialport's stream then never reads,
    // as nothing asks it for data. The mock binding has no fd: it goes through the stream.
    const onData = (chunk: Buffer): void => this.dataCb?.(chunk);
    if (isPolledPort(port.port)) {
      const gone = (err: Error): void => {
        this.lastErr = err;
        void this.close();
      };
      readOnLoop(path, port.port, onData, gone, readGapMs);
    } else port.on("data", onData);
  }

  onData(cb: (chunk: Buffer) => void): void {
    this.dataCb = cb;
  }

  write(data: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.port.isOpen) {
        reject(new LinkError(`${this.path} is not open`));
        return;
      }
      this.port.write(data, (err) => (err ? reject(new LinkError(`write to ${this.path} failed`, { cause: err })) : resolve()));
    });
  }

  /**
   * Closes the port, waiting at most CLOSE_WAIT_MS: a close that never completes (seen as a flash that
   * never answered) must not hold up whoever takes the port next, nor the link's reconnect — `closed`
   * settles then too; the fd is released when the close does complete.
   */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.port.isOpen) {
        if (!this.port.closing) this.settle(this.lastErr);
        else setTimeout(() => this.settle(this.lastErr ?? new LinkError(`closing ${this.path} did not complete`)), CLOSE_WAIT_MS).unref();
        return resolve();
      }
      const timer = setTimeout(() => {
        this.settle(this.lastErr ?? new LinkError(`closing ${this.path} did not complete`));
        resolve();
      }, CLOSE_WAIT_MS);
      this.port.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function openPort(port: PortLike, path: string, signal?: AbortSignal, options?: OpenOptions): Promise<SerialConnection> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    port.open((err) => {
      if (err) reject(new LinkError(`cannot open ${path}: ${err.message}`, { cause: err }));
      else if (signal?.aborted) {
        port.close(() => reject(signal.reason));
      } else resolve(new StreamConnection(path, port, options?.readGapMs));
    });
  });
}

/** Real ports through serialport's native binding. */
export const nodeSerialIo: SerialIo = {
  open(path, baudRate, signal, options) {
    // hupcl:false keeps boards that reset on DTR (Arduino Uno) from rebooting on every reconnect.
    return openPort(new SerialPort({ path, baudRate, autoOpen: false, hupcl: false }), path, signal, options);
  },
};

/** serialport's mock binding (in ESM use `SerialPortMock.binding`, not a separate MockBinding import). */
export const mockSerialIo: SerialIo & { ports: Map<string, SerialPortMock> } = {
  ports: new Map(),
  open(path, baudRate, signal) {
    const port = new SerialPortMock({ path, baudRate, autoOpen: false });
    this.ports.set(path, port);
    return openPort(port, path, signal);
  },
};

/** How often an open port's device node is checked (see `watchDeviceNode`). */
export const DEVICE_WATCH_MS = 1_000;

/**
 * Calls `gone` once the device node behind `path` disappears or is replaced by another device (a USB
 * adapter re-enumerated, a pty pair recreated), checking every `everyMs`. The read side normally sees
 * the unplug as an I/O error, but not always: a port with no read pending when the other end vanishes
 * can sit open on a dead node. Paths that are not device nodes on this machine (the mock binding's)
 * are not watched. Returns a stop function.
 */
export function watchDeviceNode(path: string, gone: (why: Error) => void, everyMs = DEVICE_WATCH_MS): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = (rdev: number): void => {
    timer = setTimeout(() => {
      stat(path).then(
        (s) => {
          if (stopped) return;
          if (s.rdev !== rdev) gone(new LinkError(`${path} is now another device`));
          else check(rdev);
        },
        (err: NodeJS.ErrnoException) => {
          if (stopped) return;
          if (err.code === "ENOENT" || err.code === "ENXIO" || err.code === "ENODEV") gone(new LinkError(`${path} is gone (${err.code})`));
          else check(rdev);
        },
      );
    }, everyMs);
    timer.unref();
  };
  stat(path).then(
    (s) => {
      if (!stopped && (s.isCharacterDevice() || s.rdev !== 0)) check(s.rdev);
    },
    () => {},
  );
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
