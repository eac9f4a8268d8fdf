import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects, type ConfigValue } from "@canopy/protocol";

export const APP_CONFIG_FILE = "app-config.json";

/** Contents of `<data>/app-config.json`, and the body of `local.cfg.changed`. */
export interface AppConfigFile {
  revision: number;
  updatedAt: number;
  config: Record<string, ConfigValue>;
}

export interface AppConfigChanged {
  revision: number;
  changed: string[];
  file: string;
}

/**
 * Settings for device apps: written atomically (temp file + rename, so a reader never sees half a
 * file) to `<data>/app-config.json`, then announced on the leaf-only subject `local.cfg.changed`.
 */
export class AppConfigWriter {
  readonly file: string;

  constructor(dataDir: string, private readonly nc: NatsConnection | undefined) {
    this.file = join(dataDir, APP_CONFIG_FILE);
  }

  async deliver(config: Record<string, ConfigValue>, changed: string[], revision: number): Promise<void> {
    const body: AppConfigFile = { revision, updatedAt: Date.now(), config };
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(body, null, 2) + "\n");
    await rename(tmp, this.file);
    if (this.nc && !this.nc.isClosed()) {
      const note: AppConfigChanged = { revision, changed, file: this.file };
      this.nc.publish(Subjects.localConfigChanged, JSON.stringify(note));
    }
  }
}
