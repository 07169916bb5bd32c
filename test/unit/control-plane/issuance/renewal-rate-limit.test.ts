// The issuance rate limit keyed so that one pod cannot starve the others of its ID (audit 11 F2): a renewal draws
// from its chain's bucket (the serial its chain of renewals began with, recorded with every SVID), an attestation
// from the ID's. A pod renewing in a loop with the key its Workload API hands out spends only its own bucket.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import type { SignResult } from '../../../../control-plane/src/issuance/issuer.js';
import { RateLimiter } from '../../../../control-plane/src/issuance/rate-limiter.js';
import { Revocations } from '../../../../control-plane/src/issuance/revocations.js';
import { openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { type TestIssuer, testIssuer } from '../../../helpers/test-issuer.js';

const td = TrustDomain.parse(TD);
const WEB = `spiffe://${TD}/ns/default/sa/web`;

describe('issuance rate limit per pod', () => {
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  let t: TestIssuer;
  const clock = { nowMs: () => Date.now() };

  beforeEach(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    parts = await openTestCa(tmp.dir, clock);
    const { store } = parts;
    const revocations = await Revocations.open({ store: store.revocations, tokens: store.tokens, inventory: store.inventory, audit: store.audit, trustDomain: td, clock, onChange: () => {} });
    // 4 at once, no refill within the test.
    t = testIssuer(parts, clock, revocations, new RateLimiter({ burst: 4, perMinute: 0.001 }, clock));
  });
  afterEach(async () => {
    await parts.store.close();
    await cleanup();
  });

  const codeOf = (p: Promise<unknown>) => p.then(() => 'issued', (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`));
  const attest = (key: KeyPair) => t.attest(key, WEB);
  const renew = (key: KeyPair, svid: SignResult) => t.renew(key, svid, WEB);

  test('a pod renewing in a loop exhausts its own chain, not its sibling\'s renewals nor a new pod\'s attestation', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const podA = await attest(a);
    const podB = await attest(b);
    // Pod A renews in a loop, each time with the SVID it just got: its chain's bucket (4) runs out.
    let current = podA;
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const next = await renew(a, current).catch((e: unknown) => e);
      if (isTesseraError(next)) codes.push(next.code);
      else {
        codes.push('issued');
        current = next as SignResult;
      }
    }
    expect(codes).toEqual(['issued', 'issued', 'issued', 'issued', 'TESSERA_ERR_ISSUANCE_RATE_LIMITED', 'TESSERA_ERR_ISSUANCE_RATE_LIMITED']);
    // Its sibling renews as ever, and a new pod of the ID attests.
    expect(await codeOf(renew(b, podB))).toBe('issued');
    expect(await codeOf(attest(generateKeyPair()))).toBe('issued');
    // Every SVID of A's chain names the serial the chain began with.
    expect(await t.issuer.lineageOf(current.serial)).toBe(podA.serial);
    expect(await t.issuer.lineageOf(podB.serial)).toBe(podB.serial);
  });
});
