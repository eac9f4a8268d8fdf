import type { Command } from "commander";
import { CanopyError, ErrorCode, checkId } from "@canopy/protocol";
import { withHub } from "../context.js";
import { printJson, table } from "../output.js";
import { runDoctor } from "../../doctor/checks.js";

/** `canopy doctor`: what is wrong with the hub and the devices, in one screen; exit 1 on a problem. */
export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check the hub and every device: engine version, auth/TLS, clock skew, disk, leaf link, backlog, MCU links")
    .option("--device <id>", "only this device (and the hub)")
    .option("--json", "machine-readable output: {ok, problems, warnings, checks: [{scope, device, check, status, detail}]}")
    .addHelpText(
      "after",
      `
Exit codes: 0 no problems (warnings allowed), 1 at least one problem, 2 bad usage.

Examples:
  canopy doctor
  canopy doctor --device pi-01 --json | jq '.checks[] | select(.status != "ok")'`,
    )
    .action(async (o: { device?: string; json?: boolean }, cmd: Command) => {
      if (o.device) checkId(o.device, "device id");
      await withHub(cmd, async (nc) => {
        const report = await runDoctor(nc, o.device ? { device: o.device } : {});
        if (o.device && !report.checks.some((c) => c.device === o.device)) {
          throw new CanopyError(ErrorCode.NotFound, `device ${o.device} is not enrolled`);
        }
        if (!report.ok) process.exitCode = 1;
        if (o.json) return printJson(report);
        const mark = { ok: "ok", warn: "WARN", fail: "FAIL" } as const;
        process.stdout.write(table(["SCOPE", "CHECK", "STATUS", "DETAIL"], report.checks.map((c) => [c.scope, c.check, mark[c.status], c.detail])));
        process.stdout.write(`${report.problems} problem(s), ${report.warnings} warning(s)\n`);
      });
    });
}
