// The inventory's prune against what the real Issuer records: every SVID is written with its renewal tree and its
// depth in it, so after a prune that drops the SVIDs nobody renewed, a chain whose first SVIDs expired long ago and
// whose last is live still answers as before: the live one renews under the same lineage (its rate-limit bucket),
// and a ban of the chain's first serial bans the live SVIDs renewed from it.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import type { Revocations } from '../../../../control-plane/src/issuance/revocations.js';
import { openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { openTestRevocations, type TestIssuer, testIssuer } from '../../../helpers/test-issuer.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const MINUTE = 60_000;
/** The SVIDs live an hour (test-issuer.ts); the prune keeps an expired one another hour. */
const KEEP = 60 * MINUTE;

describe('the inventory prune and a chain of real renewals', () => {
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  let revocations: Revocations;
  let t: TestIssuer;
  let now = 0;
  const clock = { nowMs: () => now };

  beforeEach(async () => {
    now = Date.now();
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    parts = await openTestCa(tmp.dir, clock);
    revocations = await openTestRevocations(parts, clock);
    t = testIssuer(parts, clock, revocations);
  });
  afterEach(async () => {
    await parts.store.close();
    await cleanup();
  });

  test('the dead SVID goes; the chain keeps its expired first links, its lineage, and a ban of its first serial reaches its live ones', async () => {
    const key = generateKeyPair();
    const chain = [await t.attest(key, WEB)];
    const unrenewed = await t.attest(generateKeyPair(), WEB);
    // Renewed every 50 minutes, 4 times: the first two expired more than KEEP ago, the last two are live.
    for (let i = 0; i < 4; i++) {
      now += 50 * MINUTE;
      chain.push(await t.renew(key, chain.at(-1)!, WEB));
    }
    const inv = parts.store.inventory;
    const first = chain[0]!.serial;
    expect(await Promise.all(chain.map(async (s) => (await inv.find(s.serial))?.depth))).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(await Promise.all(chain.map(async (s) => (await inv.find(s.serial))?.chain)))).toEqual(new Set([first]));
    expect(chain[1]!.notAfterMs).toBeLessThan(now - KEEP);

    expect(await inv.prune({ cutoffMs: now - KEEP, reach: 10_000, batch: 5_000, maxRows: 1_000_000 })).toBe(1);
    expect(await inv.find(unrenewed.serial)).toBeUndefined();
    expect((await inv.all()).map((r) => r.serial).sort()).toEqual(chain.map((s) => s.serial).sort());

    // The live tip renews under the chain's lineage (the bucket its renewals and JWT-SVIDs draw from).
    const tip = chain.at(-1)!;
    expect(await t.issuer.lineageOf(tip.serial)).toBe(first);
    const renewed = await t.renew(key, tip, WEB);
    expect(await inv.find(renewed.serial)).toMatchObject({ lineage: first, chain: first, depth: 5 });
    // A ban of the first serial, expired long ago, reaches every live SVID renewed from it.
    const ban = await revocations.ban({ kind: 'serial', value: first, reason: 'leaked', createdBy: 'alice' });
    expect(ban.created).toBe(true);
    expect(ban.renewals.sort()).toEqual([chain[3]!.serial, tip.serial, renewed.serial].sort());
  });
});
