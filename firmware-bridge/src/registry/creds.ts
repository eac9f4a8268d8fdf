import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type { Database } from "lmdb";
import { BRIDGE_CREDS_SUBJECT, McuCredsArgs, errorMessage, type McuCredsReply } from "@canopy/protocol";
import type { Counters } from "../counters.js";
import type { Logger } from "../log.js";

const enc = new TextEncoder();

/**
 * `local.bridge.creds` (leaf-local; the agent's `bridge.creds` command is the only caller): stores an
 * MCU's password hash, flushed before the reply, so the command succeeds only once the device keeps it.
 * The hash is never logged.
 */
export function answerCreds(nc: NatsConnection, creds: Database<string, string>, counters: Counters, log: Logger): Subscription {
  return nc.subscribe(BRIDGE_CREDS_SUBJECT, {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      const respond = (r: McuCredsReply): void => void msg.respond(enc.encode(JSON.stringify(r)));
      let args: McuCredsArgs;
      try {
        args = McuCredsArgs.parse(msg.json());
      } catch (e) {
        counters.inc("creds.invalid");
        respond({ mcu: "", stored: false, error: `invalid credentials record: ${errorMessage(e).slice(0, 200)}` });
        return;
      }
      creds
        .put(args.mcu, args.hash)
        .then(() => creds.flushed)
        .then(
          () => {
            counters.inc("creds.stored");
            log.info({ mcu: args.mcu }, "mqtt credentials stored");
            respond({ mcu: args.mcu, stored: true });
          },
          (e: unknown) => respond({ mcu: args.mcu, stored: false, error: errorMessage(e) }),
        );
    },
  });
}
