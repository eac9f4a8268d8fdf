import { z } from "zod";
import { Id, Timestamp, TokenPath } from "./common.js";
import { checkId, checkTokenPath } from "../ids.js";
import { ConfigKeys } from "../subjects.js";

/**
 * Remote config (issue 5). Authored layers live in hub KV `cfg-src` (`fleet.<key>`, `group.<g>.<key>`,
 * `device.<dev>.<key>`, each value the JSON of the setting); the gateway renders each device's
 * effective config into hub KV `cfg` (`<dev>.<key>` → `RenderedConfig`); the leaf mirrors its own
 * keys; the agent validates, applies and reports `ConfigEvent`s and per-key state in `status`.
 */

/** A layer an operator writes to. Precedence when rendering: device > group > fleet. */
export type ConfigLayer = { kind: "fleet" } | { kind: "group"; group: string } | { kind: "device"; device: string };

/** `fleet`, `group:<g>`, `device:<dev>`: how a layer is named in rendered records and output. */
export function layerName(layer: ConfigLayer): string {
  switch (layer.kind) {
    case "fleet":
      return "fleet";
    case "group":
      return `group:${checkId(layer.group, "group id")}`;
    case "device":
      return `device:${checkId(layer.device, "device id")}`;
  }
}

/** The `cfg-src` key of a setting in a layer; validates ids and the key. */
export function layerKey(layer: ConfigLayer, key: string): string {
  switch (layer.kind) {
    case "fleet":
      return ConfigKeys.fleet(key);
    case "group":
      return ConfigKeys.group(layer.group, key);
    case "device":
      return ConfigKeys.device(layer.device, key);
  }
}

/** Parses a `cfg-src` key back into its layer and setting key; undefined for foreign keys. */
export function parseLayerKey(k: string): { layer: ConfigLayer; key: string } | undefined {
  const [head, a, ...rest] = k.split(".");
  if (head === "fleet" && a !== undefined) {
    const key = [a, ...rest].join(".");
    return isKey(key) ? { layer: { kind: "fleet" }, key } : undefined;
  }
  if ((head === "group" || head === "device") && a !== undefined && rest.length > 0) {
    const key = rest.join(".");
    if (!isKey(key) || !Id.safeParse(a).success) return undefined;
    return { layer: head === "group" ? { kind: "group", group: a } : { kind: "device", device: a }, key };
  }
  return undefined;
}

function isKey(key: string): boolean {
  return TokenPath.safeParse(key).success;
}

/** Operator input: a value is JSON when it parses as JSON, else the literal string. */
export function parseConfigValue(text: string): z.infer<typeof ConfigValue> {
  try {
    return ConfigValue.parse(JSON.parse(text));
  } catch {
    return text;
  }
}

/** Any JSON value. */
export const ConfigValue = z.json();
export type ConfigValue = z.infer<typeof ConfigValue>;

export const ConfigSource = z.string().regex(/^(fleet|group:[A-Za-z0-9_-]{1,64}|device:[A-Za-z0-9_-]{1,64})$/);

/** Hub KV `cfg`, key `<dev>.<key>`: what the device must run and which layer it came from. */
export const RenderedConfig = z.object({ value: ConfigValue, source: ConfigSource });
export type RenderedConfig = z.infer<typeof RenderedConfig>;

export const ConfigApplyStatus = z.enum(["applied", "failed"]);
export type ConfigApplyStatus = z.infer<typeof ConfigApplyStatus>;

/** `up.<dev>.evt.config`: one per rendered revision the agent processed. */
export const ConfigEvent = z.object({
  key: TokenPath,
  /** Hub revision of `cfg` key `<dev>.<key>` (the leaf mirror keeps the hub's numbers). */
  revision: z.number().int().nonnegative(),
  status: ConfigApplyStatus,
  error: z.string().optional(),
  /** The rendered key was removed: the agent went back to its default. */
  removed: z.boolean().optional(),
  at: Timestamp,
});
export type ConfigEvent = z.infer<typeof ConfigEvent>;

/** Per-key state the agent keeps and reports in `status.config.keys`. */
export const ConfigKeyState = z.object({
  /** The last revision processed (applied or refused). */
  revision: z.number().int().nonnegative(),
  status: ConfigApplyStatus,
  error: z.string().optional(),
  at: Timestamp.optional(),
  /** The last revision that applied successfully, i.e. what runs (absent: none yet, the default runs). */
  appliedRevision: z.number().int().nonnegative().optional(),
});
export type ConfigKeyState = z.infer<typeof ConfigKeyState>;

/** Reply to the leaf-local `local.config.reload` request. */
export const ConfigReloadReply = z.object({
  revision: z.number().int().nonnegative(),
  keys: z.number().int().nonnegative(),
  failed: z.array(z.object({ key: TokenPath, error: z.string() })),
});
export type ConfigReloadReply = z.infer<typeof ConfigReloadReply>;

/** Leaf-local: re-apply the device's config from its mirror (the `config.reload` command calls it). */
export const LOCAL_CONFIG_RELOAD = "local.config.reload";

/** Checks a setting key for CLI and API input (clear error, exit 2). */
export function checkConfigKey(key: unknown): string {
  return checkTokenPath(key, "key");
}

