// The inventory's prune against what the real Issuer records: every SVID is written with its renewal tree and its
// depth in it, so a prune can drop every SVID expired past the keep, middle ones of a live chain included, and a ban
// of a serial still held reaches the live SVIDs renewed from it all the same; the live one renews under the same
// lineage (its rate-limit bucket) and chain. A renewal asked for a shorter lifetime than its parent's expires first:
// it goes while its parent is kept, and the ban of the parent still reaches what was renewed from it.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import type { Revocations } from '../../../../control-plane/src/issuance/revocations.js';
import { openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { openTestRevocations, type TestIssuer, testIssuer } from '../../../helpers/test-issuer.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const MINUTE = 60_000;

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

  const inv = () => parts.store.inventory;
  const held = async () => (await inv().all()).map((r) => r.serial).sort();
  const banSerial = (serial: string) => revocations.ban({ kind: 'serial', value: serial, reason: 'leaked', createdBy: 'alice' });
  const codeOf = (p: Promise<unknown>) => p.then(() => 'issued', (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`));

  test('only the SVIDs unexpired at the cutoff stay; the tip renews in its chain; a ban of the oldest held reaches the live ones, one that went is unknown', async () => {
    /** The SVIDs live an hour (test-issuer.ts); the prune keeps an expired one another hour. */
    const keep = 60 * MINUTE;
    const key = generateKeyPair();
    const chain = [await t.attest(key, WEB)];
    const unrenewed = await t.attest(generateKeyPair(), WEB);
    // Renewed every 50 minutes, 4 times: the first two expired more than `keep` ago, the third within it, two live.
    for (let i = 0; i < 4; i++) {
      now += 50 * MINUTE;
      chain.push(await t.renew(key, chain.at(-1)!, WEB));
    }
    const first = chain[0]!.serial;
    expect(await Promise.all(chain.map(async (s) => (await inv().find(s.serial))?.depth))).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(await Promise.all(chain.map(async (s) => (await inv().find(s.serial))?.chain)))).toEqual(new Set([first]));
    expect(chain[1]!.notAfterMs).toBeLessThan(now - keep);
    expect(chain[2]!.notAfterMs).toBeGreaterThan(now - keep);
    expect(chain[2]!.notAfterMs).toBeLessThan(now);

    expect(await inv().prune(now - keep, 5_000)).toBe(3);
    expect(await inv().find(unrenewed.serial)).toBeUndefined();
    expect(await held()).toEqual(chain.slice(2).map((s) => s.serial).sort());

    // The live tip renews under the chain's lineage (the bucket its renewals and JWT-SVIDs draw from), one deeper.
    const tip = chain.at(-1)!;
    expect(await t.issuer.lineageOf(tip.serial)).toBe(first);
    const renewed = await t.renew(key, tip, WEB);
    expect(await inv().find(renewed.serial)).toMatchObject({ lineage: first, chain: first, depth: 5 });
    // The first serial went with its row: unknown (ban the ID to cut the workload off).
    expect(await codeOf(banSerial(first))).toBe('TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL');
    // The oldest serial held, expired, reaches every live SVID renewed from it; its rows between are no longer needed.
    const ban = await banSerial(chain[2]!.serial);
    expect(ban.created).toBe(true);
    expect(ban.renewals.sort()).toEqual([chain[3]!.serial, tip.serial, renewed.serial].sort());
    expect(await codeOf(t.renew(key, renewed, WEB))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
  });

  test('a renewal asked for a shorter lifetime than its parent goes first; the ban of the parent, still live, reaches the live SVID renewed from it', async () => {
    const keep = 10 * MINUTE;
    const key = generateKeyPair();
    const parent = await t.attest(key, WEB);
    now += 5 * MINUTE;
    const short = await t.renew(key, parent, WEB, 5 * MINUTE);
    now += 3 * MINUTE;
    const tip = await t.renew(key, short, WEB);
    expect(short.notAfterMs).toBeLessThan(parent.notAfterMs);
    now += 22 * MINUTE;
    expect(short.notAfterMs).toBeLessThan(now - keep);

    expect(await inv().prune(now - keep, 5_000)).toBe(1);
    expect(await held()).toEqual([parent.serial, tip.serial].sort());
    expect(await inv().find(tip.serial)).toMatchObject({ chain: parent.serial, depth: 2 });
    expect(await banSerial(parent.serial)).toMatchObject({ created: true, renewals: [tip.serial] });
    expect(revocations.denyList().serials).toEqual(expect.arrayContaining([parent.serial, tip.serial]));
    expect(await codeOf(t.renew(key, tip, WEB))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
  });
});
