import { z } from "zod";

/** MQTT topic profiles of the bridge: all on by default, recognised by topic shape. */
export const MQTT_PROFILES = ["canopy", "tasmota", "esphome", "shelly", "custom"] as const;
export const MqttProfileName = z.enum(MQTT_PROFILES);

const Template = z.string().min(1).max(256).regex(/^[A-Za-z0-9_\-/{}]+$/, "topic templates hold levels of [A-Za-z0-9_-] and {name} wildcards");

/**
 * A custom topic rule: `topic` with named one-level wildcards (`sensors/{mcu}/{metric}`) → a Canopy
 * MCU id (`{mcu}` is required), a metric or event path (`path`, e.g. `env.{metric}`), and an optional
 * JSON field to extract (`field`, dotted). `command` is the reverse: the topic a command `{name}` goes to.
 */
export const CustomTopicRule = z
  .object({
    topic: Template.refine((t) => t.includes("{mcu}"), "must contain {mcu}"),
    kind: z.enum(["tlm", "evt"]).default("tlm"),
    path: z.string().min(1).max(200).regex(/^[A-Za-z0-9_\-.{}]+$/, "a dotted path of [A-Za-z0-9_-] and {name} wildcards"),
    field: z.string().min(1).max(200).regex(/^[A-Za-z0-9_\-.]+$/).optional(),
    command: Template.refine((t) => t.includes("{mcu}") && t.includes("{name}"), "must contain {mcu} and {name}").optional(),
  })
  .strict();
export type CustomTopicRule = z.infer<typeof CustomTopicRule>;
