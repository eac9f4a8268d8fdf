import type { SerialIo } from "../serial/io.js";
import { AvrdudeFlasher } from "./avrdude.js";
import { CanopyBootloaderFlasher } from "./canopy-bootloader.js";
import type { Flasher } from "./flasher.js";

/**
 * Flashers by name (`canopy`, `avrdude`, …). A new plugin is one line in `builtinFlashers`; the
 * agent's `firmware.flash` command names the one to use (`FlashArgs.flasher`).
 */
export class FlasherRegistry {
  private readonly byName = new Map<string, Flasher>();

  constructor(flashers: Flasher[]) {
    for (const f of flashers) this.byName.set(f.name, f);
  }

  get names(): string[] {
    return [...this.byName.keys()].sort();
  }

  get(name: string): Flasher | undefined {
    return this.byName.get(name);
  }
}

export function builtinFlashers(io?: SerialIo): FlasherRegistry {
  return new FlasherRegistry([
    new CanopyBootloaderFlasher(io),
    new AvrdudeFlasher(io ? { io } : {}),
  ]);
}
