import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FirmwareManifest } from "@canopy/protocol";
import { CanopyProcess, Fleet, json, tempDir, type TempDir } from "../harness/index.js";
import { PtyPair } from "../e2e/bridge-support.js";
import { mcuRows, online, type McuRow } from "./support.js";

/**
 * The firmware tests' fleet: a hub, one device whose bridge serves sim MCUs (by default m1 slow boot
 * writes, m2 with 1 % corrupted frames, m3 plain) over socat ptys, and helpers to upload and flash.
 */
export interface FinalLine {
  final: true;
  state: string;
  detail: string;
  runningVersion?: string;
}
export interface Row extends McuRow {
  imageSha256?: string;
  lastFlash?: { state: string; version: string; sha256: string; at: number; detail: string };
}

export class FlashFixture {
  fleet!: Fleet;
  dir!: TempDir;
  readonly ptys: Record<string, PtyPair> = {};
  readonly sims: Record<string, CanopyProcess> = {};

  /**
   * @param mcus sim MCU id → extra `canopy sim mcu` flags (default: m1 slow boot writes, m2 1 % corrupted
   *   frames, m3 plain)
   */
  constructor(
    readonly device: string,
    private readonly prefix: string,
    private readonly mcus: Record<string, string[]> = { m1: ["--boot-write-ms", "15"], m2: ["--corrupt", "0.01"], m3: [] },
    private readonly groups: string[] = [],
  ) {}

  async start(): Promise<void> {
    this.fleet = await Fleet.start();
    this.dir = await tempDir(this.prefix);
    const ids = Object.keys(this.mcus);
    for (const id of ids) {
      const p = PtyPair.in(this.dir, id);
      this.ptys[id] = p;
      await p.start();
    }
    await this.fleet.startAgent(this.device, {
      args: Object.values(this.ptys).flatMap((p) => ["--bridge-serial", p.a]),
      env: { CANOPY_TEST_FIRMWARE_CHUNK_DELAY_MS: "250" },
      groups: this.groups,
    });
    for (const [id, extra] of Object.entries(this.mcus)) this.startSim(id, extra);
    await mcuRows(this.fleet, this.device, (rows) => online(rows, ids), `${ids.length} sim MCUs online`, 60_000);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(Object.values(this.sims).map((p) => p.stop()));
    await Promise.allSettled(Object.values(this.ptys).map((p) => p.kill()));
    await this.fleet?.stop();
    await this.dir?.remove();
  }

  startSim(id: string, extra: string[]): CanopyProcess {
    const p = new CanopyProcess(["sim", "mcu", "--id", id, "--serial", this.ptys[id]!.b, "--binary", "--rate", "1", "--board", "rp2040", "--firmware", "1.0.0", ...extra]);
    this.sims[id] = p;
    return p;
  }

  async image(name: string, size: number, marker?: string): Promise<{ path: string; sha256: string }> {
    const data = randomBytes(size);
    if (marker) data.write(marker, Math.floor(size / 2), "latin1");
    const path = join(this.dir.path, name);
    await writeFile(path, data);
    return { path, sha256: createHash("sha256").update(data).digest("hex") };
  }

  async upload(file: string, version: string): Promise<FirmwareManifest> {
    const r = await this.fleet.cli(["firmware", "upload", file, "--board", "rp2040", "--fw-version", version, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return json<FirmwareManifest>(r);
  }

  async flash(mcu: string, version: string, extra: string[] = []): Promise<{ final: FinalLine; events: Array<{ state: string; bytes: number }> }> {
    const r = await this.fleet.cli(["flash", "--device", this.device, "--mcu", mcu, "--firmware", `rp2040@${version}`, "--wait", "--timeout", "150s", "--json", ...extra], 170_000);
    const lines = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const final = lines.find((l) => l["final"] === true) as FinalLine | undefined;
    assert.ok(final, `no final line: ${r.stdout} ${r.stderr}`);
    assert.equal(r.code, final.state === "confirmed" ? 0 : 1);
    return { final, events: lines.filter((l) => !l["final"]) as Array<{ state: string; bytes: number }> };
  }

  async row(mcu: string, ok: (r: Row) => boolean, what: string): Promise<Row> {
    const rows = (await mcuRows(this.fleet, this.device, (rs) => rs.some((r) => r.id === mcu && ok(r as Row)), what, 60_000)) as Row[];
    return rows.find((r) => r.id === mcu)!;
  }
}
