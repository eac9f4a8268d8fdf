import { Environment } from "@marcbachmann/cel-js";
import { QUERY_TYPES, QUERY_VARIABLES } from "./schemas/query.js";

/**
 * The one CEL environment for live queries: the gateway compiles in it before fan-out and every agent
 * evaluates in it, so an expression that compiles at the operator's side means the same on a device.
 */
export function queryEnvironment(): Environment {
  const env = new Environment({ limits: { maxAstNodes: 2_000, maxDepth: 64 } });
  for (const [name, fields] of Object.entries(QUERY_TYPES)) env.registerType(name, { fields: { ...fields } });
  for (const [name, decl] of Object.entries(QUERY_VARIABLES)) {
    if (typeof decl === "string") env.registerVariable(name, decl);
    else env.registerVariable({ name, schema: decl as Record<string, string> });
  }
  return env;
}
