import type { ISubscribePacket } from "mqtt-packet";
import type { Counters } from "../counters.js";
import type { ProfileRouter } from "./profiles/router.js";
import { Reason } from "./reason.js";

/**
 * One client's granted SUBSCRIBE filters. Only filters some enabled profile allows for this client's
 * own command topics are granted; the bridge delivers commands only to the MCU they name, so a filter
 * never makes it a general broker.
 */
export class Subscriptions {
  private readonly subs = new Map<string, number>();

  constructor(private readonly router: ProfileRouter, private readonly counters: Counters) {}

  /** The SUBACK return codes, in order. */
  subscribe(p: ISubscribePacket, clientId: string, version: 4 | 5): number[] {
    return p.subscriptions.map((s) => {
      if (!this.router.filterAllowed(s.topic, clientId) || this.subs.size >= 64) {
        this.counters.inc("mqtt.subscribe_denied");
        return version === 5 ? Reason.NotAuthorized : 0x80;
      }
      const qos = Math.min(s.qos, 1);
      this.subs.set(s.topic, qos);
      return qos;
    });
  }

  unsubscribe(topics: string[]): number[] {
    return topics.map((t) => (this.subs.delete(t) ? 0 : Reason.NoSubscriptionExisted));
  }

  get filters(): Iterable<string> {
    return this.subs.keys();
  }

  qos(filter: string): 0 | 1 {
    return this.subs.get(filter) === 1 ? 1 : 0;
  }
}
