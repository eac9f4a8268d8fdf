import { appendFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { z } from "zod";
import { CanopyError, ErrorCode, sleep } from "@canopy/protocol";
import { defineHandler, type CommandHandler } from "../registry.js";

/**
 * Test-only handlers, registered only when CANOPY_TEST_HANDLERS=1: `test.append` appends a line to a
 * file (so an e2e test can count executions), then optionally holds for `holdMs` (cancel/kill tests).
 */
const appendArgs = z
    .object({
      file: z.string().refine(isAbsolute, "must be an absolute path"),
      line: z.string().max(1_000),
      holdMs: z.coerce.number().int().min(0).max(120_000).default(0),
    })
    .strict();

async function append(args: z.infer<typeof appendArgs>, signal: AbortSignal): Promise<unknown> {
    await appendFile(args.file, `${args.line}\n`);
    if (args.holdMs > 0 && !(await sleep(args.holdMs, signal))) {
      throw new CanopyError(ErrorCode.Cancelled, "test.append stopped while holding");
    }
    return { appended: args.line };
}

export const testAppend = defineHandler({ name: "test.append", args: appendArgs, timeoutMs: 150_000, run: append });
/** The same, declared re-runnable: after a crash mid-run it runs again instead of ending `interrupted`. */
export const testAppendIdempotent = defineHandler({
  name: "test.append-idempotent",
  args: appendArgs,
  timeoutMs: 150_000,
  rerunnable: true,
  run: append,
});

export function testHandlers(env: NodeJS.ProcessEnv = process.env): CommandHandler[] {
  return env.CANOPY_TEST_HANDLERS === "1" ? [testAppend, testAppendIdempotent] : [];
}
