import { SerialPort, SerialPortMock } from "serialport";
import { LinkError } from "../errors.js";

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

export interface SerialIo {
  open(path: string, baudRate: number, signal?: AbortSignal): Promise<SerialConnection>;
}

type PortLike = SerialPort | SerialPortMock;

const CLOSE_WAIT_MS = 3_000;

class StreamConnection implements SerialConnection {
  readonly closed: Promise<Error | undefined>;
  private dataCb: ((chunk: Buffer) => void) | undefined;

  constructor(readonly path: string, private readonly port: PortLike) {
    this.closed = new Promise((resolve) => {
      let lastErr: Error | undefined;
      port.on("error", (err: Error) => {
        lastErr = err;
        // An I/O error on a pty or an unplugged USB CDC device: make sure the port is closed so the
        // 'close' event fires and the link supervisor reconnects.
        if (port.isOpen) port.close(() => {});
        else resolve(lastErr);
      });
      port.on("close", (err?: Error | null) => resolve(err ?? lastErr));
    });
    port.on("data", (chunk: Buffer) => this.dataCb?.(chunk));
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
   * never answered) must not hold up whoever takes the port next; the fd is released when it does.
   */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.port.isOpen) return resolve();
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      this.port.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function openPort(port: PortLike, path: string, signal?: AbortSignal): Promise<SerialConnection> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    port.open((err) => {
      if (err) reject(new LinkError(`cannot open ${path}: ${err.message}`, { cause: err }));
      else if (signal?.aborted) {
        port.close(() => reject(signal.reason));
      } else resolve(new StreamConnection(path, port));
    });
  });
}

/** Real ports through serialport's native binding. */
export const nodeSerialIo: SerialIo = {
  open(path, baudRate, signal) {
    // hupcl:false keeps boards that reset on DTR (Arduino Uno) from rebooting on every reconnect.
    return openPort(new SerialPort({ path, baudRate, autoOpen: false, hupcl: false }), path, signal);
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
