import { spawn } from "node:child_process";
import { isAbsolute } from "node:path";
import { z } from "zod";
import { CanopyError, ErrorCode, deadline } from "@canopy/protocol";
import { defineHandler } from "../registry.js";
import { execAllowlist } from "./exec-allow.js";

export { execAllowlist } from "./exec-allow.js";

const OUTPUT_CAP = 64 * 1024;

/** Runs an allowlisted script (no shell), output capped; the AbortSignal terminates it. */
export const exec = defineHandler({
  name: "exec",
  args: z
    .object({
      path: z.string().refine(isAbsolute, "must be an absolute path"),
      args: z.array(z.string()).max(64).default([]),
      timeoutMs: z.coerce.number().int().min(100).max(9 * 60_000).default(60_000),
    })
    .strict(),
  timeoutMs: 9 * 60_000 + 5_000,
  async run(args, signal, ctx) {
    const allowed = execAllowlist(ctx);
    if (!allowed.includes(args.path)) {
      throw new CanopyError(
        ErrorCode.Rejected,
        `${args.path} is not in this device's exec allowlist (the local file ${ctx.options.execAllowFile} or agent --allow-exec, narrowed by config exec.allow); allowed: ${allowed.join(", ") || "none"}`,
      );
    }
    const limit = deadline(args.timeoutMs, signal);
    return runScript(args.path, args.args, limit.signal).finally(() => limit.clear());
  },
});

function runScript(path: string, argv: string[], signal: AbortSignal): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, argv, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    const take = (cur: string, d: Buffer): string => (cur.length >= OUTPUT_CAP ? cur : (cur + d.toString()).slice(0, OUTPUT_CAP));
    child.stdout.on("data", (d: Buffer) => (stdout = take(stdout, d)));
    child.stderr.on("data", (d: Buffer) => (stderr = take(stderr, d)));
    const kill = (): void => {
      try {
        process.kill(-(child.pid ?? 0), "SIGTERM");
        setTimeout(() => child.exitCode === null && process.kill(-(child.pid ?? 0), "SIGKILL"), 3_000).unref();
      } catch {
        /* already gone */
      }
    };
    signal.addEventListener("abort", kill, { once: true });
    child.on("error", (err) => reject(new CanopyError(ErrorCode.Internal, `cannot run ${path}: ${err.message}`)));
    child.on("close", (code, sig) => {
      signal.removeEventListener("abort", kill);
      if (signal.aborted) {
        reject(new CanopyError(ErrorCode.Cancelled, `${path} was stopped (${sig ?? "signal"})`));
        return;
      }
      if (code === 0) resolve({ exitCode: code, stdout, stderr });
      else reject(new CanopyError(ErrorCode.Internal, `${path} exited with ${code ?? sig}; stderr: ${stderr.slice(-2_000) || "(empty)"}`));
    });
  });
}
