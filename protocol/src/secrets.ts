/**
 * Argument and config keys whose values are secrets (Wi-Fi passwords, MQTT passwords, seeds, tokens):
 * they travel to the device once and are kept nowhere in clear text after that (KV records show
 * "[redacted]", the hub's CMD copy is erased once the command ended).
 */
export const SECRET_KEY = /(password|passwd|secret|token|psk|credential|creds|seed|private)/i;
export const REDACTED = "[redacted]";

export function hasSecrets(args: Record<string, unknown>): boolean {
  return Object.keys(args).some((k) => SECRET_KEY.test(k));
}

/** A copy with every secret value replaced by "[redacted]" (one level: command args are flat). */
export function redactSecrets(args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, SECRET_KEY.test(k) ? REDACTED : v]));
}
