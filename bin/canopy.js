#!/usr/bin/env node
// The `canopy` binary. The three parts never import each other, so this dispatcher picks the part
// that owns a subcommand and hands it the arguments: `agent` and `sim fleet` belong to the agent,
// `bridge`, `sim mcu` and `mcu map` to the firmware bridge, everything else (operator commands, hub, dev) to
// the gateway.
const argv = process.argv.slice(2);
const [first, second] = argv;
if (argv.length === 1 && (first === "--version" || first === "-V")) {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.stdout.write(`${pkg.version}\n`);
  process.exit(0);
}
let part = "@canopy/gateway/cli";
if (first === "agent" || (first === "sim" && second === "fleet")) part = "@canopy/agent/cli";
else if (first === "bridge" || (first === "sim" && second === "mcu") || (first === "mcu" && second === "map")) part = "@canopy/firmware-bridge/cli";

// Installed from the packed tarball, the parts are folders beside bin/ rather than linked workspaces.
try {
  import.meta.resolve(part);
} catch {
  const { register } = await import("node:module");
  register("./resolve-parts.mjs", import.meta.url);
}

// `canopy … | head` closes the pipe early: that is the reader's choice, not a failure.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err && err.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    throw err;
  });
}

const { main } = await import(part);
process.exitCode = await main(argv);
// A command that failed is over, even if it had started something that keeps the event loop alive
// (seen: `hub start` failing after its nats-server was up stayed running, never ready, for good).
if (process.exitCode !== 0) process.exit(process.exitCode);
