import { test } from "node:test";
import assert from "node:assert/strict";
import { credsAuthenticator, nkeys } from "@nats-io/nats-core";
import { fastCredsAuthenticator } from "./creds.js";

function credsFor(seed: string, jwt: string): string {
  return [
    "-----BEGIN NATS USER JWT-----", jwt, "------END NATS USER JWT------", "",
    "************************* IMPORTANT *************************", "NKEY Seed printed below can be used to sign and prove identity.", "",
    "-----BEGIN USER NKEY SEED-----", seed, "------END USER NKEY SEED------", "",
  ].join("\n");
}

test("fastCredsAuthenticator answers a nonce exactly as nats.js credsAuthenticator does", () => {
  for (let i = 0; i < 5; i++) {
    const kp = nkeys.createUser();
    const creds = new TextEncoder().encode(credsFor(new TextDecoder().decode(kp.getSeed()), `eyJhbGciOi.${i}.sig`));
    const nonce = `nonce-${i}-${Math.random()}`;
    assert.deepEqual(fastCredsAuthenticator(creds)(nonce), credsAuthenticator(creds)(nonce));
  }
});

test("fastCredsAuthenticator refuses what is not a creds file", () => {
  assert.throws(() => fastCredsAuthenticator("just text"), /unable to parse credentials/);
  assert.throws(() => fastCredsAuthenticator(credsFor("S!!bad", "eyJ.x.y")), /unable to parse credentials/);
});
