import type { Command } from "commander";
export function registerUpstream(_p: Command): void {}
