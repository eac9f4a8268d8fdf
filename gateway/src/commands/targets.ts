import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, checkId } from "@canopy/protocol";
import { Registry } from "../registry/devices.js";
import { compileQuery, queryDevices } from "../query/index.js";

export interface TargetSelector {
  device?: string | undefined;
  group?: string | undefined;
  /** CEL over live facts: a live query picks the devices that match now. */
  where?: string | undefined;
}

/** The device ids a command goes to: exactly one of `--device`, `--group`, `--where`. Ids are validated first. */
export async function resolveTargets(nc: NatsConnection, sel: TargetSelector): Promise<string[]> {
  checkSelector(sel);
  if (sel.device !== undefined) {
    const id = checkId(sel.device, "device id");
    const reg = await Registry.open(nc);
    if (!(await reg.get(id))) throw new CanopyError(ErrorCode.NotFound, `device ${id} is not enrolled (see 'canopy devices')`);
    return [id];
  }
  if (sel.where !== undefined) {
    const live = await queryDevices(nc, { expr: sel.where, timeoutMs: 3_000 });
    // Only enrolled devices: an answer from anything else (a removed device, a simulator) is not a target.
    const enrolled = new Set((await (await Registry.open(nc)).list()).map((d) => d.id));
    const matched = live.filter((d) => enrolled.has(d));
    if (matched.length === 0) throw new CanopyError(ErrorCode.NotFound, `no live enrolled device matches ${JSON.stringify(sel.where)}`);
    return matched;
  }
  const group = checkId(sel.group, "group id");
  const members = (await (await Registry.open(nc)).list()).filter((d) => d.groups.includes(group)).map((d) => d.id);
  if (members.length === 0) throw new CanopyError(ErrorCode.NotFound, `no enrolled device is in group ${group}`);
  return members;
}

/** The usage checks of `resolveTargets`, for callers that validate before connecting. */
export function checkSelector(sel: TargetSelector): void {
  const given = [sel.device, sel.group, sel.where].filter((v) => v !== undefined);
  if (given.length !== 1) throw new CanopyError(ErrorCode.InvalidInput, "give exactly one of --device, --group or --where");
  // A syntax or type error exits 2 with the position before anything is sent.
  if (sel.where !== undefined) compileQuery(sel.where);
  if (sel.device !== undefined) checkId(sel.device, "device id");
  if (sel.group !== undefined) checkId(sel.group, "group id");
}
