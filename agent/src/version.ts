import { readFileSync } from "node:fs";

/** The agent package's version, reported in status. */
export const AGENT_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
