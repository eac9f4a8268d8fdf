import { readFileSync } from "node:fs";

let cached: string | undefined;

/** Canopy's version: the `version` of the protocol package, which is released with the three parts. */
export function canopyVersion(): string {
  if (cached === undefined) {
    try {
      cached = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "unknown";
    } catch {
      cached = "unknown";
    }
  }
  return cached;
}
