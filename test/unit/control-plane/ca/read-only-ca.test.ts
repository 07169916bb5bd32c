// The CA over a read-only mount (a Kubernetes Secret shared by replicas), on an injected clock: each replica mints
// its own intermediate in memory at open and rotates it at every half-life, pruning expired ones, while the roots
// stay the Secret's; nothing is ever written there and authority changes are refused. Needs root for the bind
// mount (skipped otherwise); the integration test runs the same with real processes and proxies.
import { filePersistence } from '../../../../control-plane/src/ca/authority-persistence.js';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { AuthorityStore } from '../../../../control-plane/src/ca/authority-store.js';
import { serialOf } from '../../../../control-plane/src/ca/authority.js';
import { type CaEvent, CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { DAY_MS, openTestCa } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';
import { type SecretMount, canMount, mountSecret } from '../../../helpers/secret-mount.js';

const MOUNTABLE = canMount();
const LIFETIMES = { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: 2 * DAY_MS };

describe.skipIf(!MOUNTABLE)('CaManager on a read-only store', () => {
  const undo: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const u of undo.splice(0).reverse()) await u();
  });

  /** A CA made in a writable dir, then its files mounted read-only as a Secret (mode 0400). */
  async function secretCa(time: FakeTime): Promise<{ mount: SecretMount; rootSerial: string }> {
    const tmp = await makeTempDir();
    undo.push(tmp.cleanup);
    mkdirSync(join(tmp.dir, 'seed'));
    const parts = await openTestCa(join(tmp.dir, 'seed'), time, LIFETIMES);
    await parts.store.close();
    const seedCa = join(tmp.dir, 'seed', 'ca');
    const files = Object.fromEntries(readdirSync(seedCa).map((n) => [n, readFileSync(join(seedCa, n))]));
    const mount = await mountSecret(join(tmp.dir, 'secret'), join(tmp.dir, 'ca'), files, { mode: 0o400 });
    undo.push(() => mount.unmount());
    return { mount, rootSerial: serialOf(parts.ca.current().authorities[0]!.root.cert) };
  }

  async function replica(dir: string, time: FakeTime): Promise<{ ca: CaManager; events: CaEvent[] }> {
    const events: CaEvent[] = [];
    const ca = await CaManager.open({
      store: filePersistence(new AuthorityStore({ dir })),
      trustDomain: TrustDomain.parse(TD),
      lifetimes: LIFETIMES,
      clock: time,
      liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
      onChange: (_s, e) => events.push(...e),
    });
    return { ca, events };
  }

  const listing = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('..')).sort().map((n) => [n, readFileSync(join(dir, n)).toString('base64')]);

  test('each replica signs with its own in-memory intermediate, rotated at half-life and pruned at expiry; the mount is never written', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const { mount, rootSerial } = await secretCa(time);
    const before = listing(mount.target);
    const a = await replica(mount.target, time);
    const b = await replica(mount.target, time);
    const shared = JSON.parse(readFileSync(join(mount.target, 'ca-state.json'), 'utf8')).authorities[0].intermediates[0].serial;
    // Minted at open: neither signs with the intermediate key the Secret shares, nor with the other's.
    const [sa, sb] = [serialOf(a.ca.current().signer.intermediate), serialOf(b.ca.current().signer.intermediate)];
    expect(new Set([shared, sa, sb]).size).toBe(3);
    expect(a.events).toEqual([expect.objectContaining({ event: 'ca.intermediate_rotated', detail: expect.objectContaining({ previous: shared, serial: sa, inMemory: true }) })]);
    expect(serialOf(a.ca.current().authorities[0]!.root.cert)).toBe(rootSerial);

    const signers = [sa];
    for (let i = 0; i < 3; i++) {
      time.advance(DAY_MS + 1_000); // past the current intermediate's half-life
      const events = await a.ca.maintain();
      expect(events.map((e) => [e.event, e.detail?.['inMemory']])).toEqual([['ca.intermediate_rotated', true]]);
      const next = serialOf(a.ca.current().signer.intermediate);
      expect(next).not.toBe(signers.at(-1));
      expect(a.ca.current().signer.intermediate.checkIssued(a.ca.current().authorities[0]!.root.cert)).toBe(true);
      signers.push(next);
    }
    // Expired ones are gone; what is kept still verifies live SVIDs.
    const kept = a.ca.current().authorities[0]!.intermediates.map((c) => c.cert.validToDate.getTime());
    expect(kept.every((t) => t > time.nowMs())).toBe(true);
    expect(a.ca.current().authorities[0]!.record.intermediates.length).toBeLessThanOrEqual(2);
    expect(listing(mount.target)).toEqual(before);
  });

  test('an authority change is refused with TESSERA_ERR_CA_READ_ONLY, naming the directory, and changes nothing', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const { mount } = await secretCa(time);
    const before = listing(mount.target);
    const { ca } = await replica(mount.target, time);
    const generation = ca.current().generation;
    const err = await ca.prepare().then(() => undefined, (e: unknown) => e);
    expect(isTesseraError(err) && [err.code, err.details['file']]).toEqual(['TESSERA_ERR_CA_READ_ONLY', mount.target]);
    expect(ca.current().generation).toBe(generation);
    expect(ca.current().bundle.authorities).toHaveLength(1);
    expect(listing(mount.target)).toEqual(before);
  });
});
