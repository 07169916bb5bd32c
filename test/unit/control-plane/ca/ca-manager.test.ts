// The CA state machine on a real data dir and an injected clock: the first authority is created and persisted,
// a rotation keeps the old root in the bundle while a live SVID chains to it, intermediates rotate at half-life and
// expired ones are pruned, and the refusals carry their codes.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { serialOf } from '../../../../control-plane/src/ca/authority.js';
import { filePersistence } from '../../../../control-plane/src/ca/authority-persistence.js';
import { AuthorityStore, STATE_FILE } from '../../../../control-plane/src/ca/authority-store.js';
import { CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { DAY_MS, openTestCa, TEST_LIFETIMES, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const codeOf = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isTesseraError(e) ? e.code : String(e)));

describe('CaManager', () => {
  const tmp = tempDirPerTest();
  let time: FakeTime;
  let parts: TestCaParts | undefined;
  beforeEach(() => {
    time = new FakeTime(Date.UTC(2026, 0, 1));
  });
  afterEach(async () => {
    await parts?.store.close();
    parts = undefined;
  });

  /** A live SVID signed by `authorityId`, valid until `notAfterMs`, as the issuer records it. */
  const recordLive = (p: TestCaParts, authorityId: string, notAfterMs: number) =>
    p.store.inventory.record({ serial: `${notAfterMs}`, spiffeId: 'spiffe://example.org/web', authorityId, intermediateSerial: 'x', notBeforeMs: time.nowMs(), notAfterMs, issuedAtMs: time.nowMs(), attestedAs: 'self', kind: 'attest', caller: 't' });

  test('an empty data dir gets one active authority whose intermediate is signed by its root; a reopen loads the same one', async () => {
    parts = await openTestCa(tmp.dir, time);
    const snap = parts.ca.current();
    expect(parts.events).toEqual([{ event: 'ca.created', authority: snap.signer.authorityId }]);
    expect(snap.authorities.map((a) => a.record.state)).toEqual(['active']);
    const a = snap.authorities[0]!;
    expect(snap.signer.intermediate.checkIssued(a.root.cert)).toBe(true);
    expect(snap.signer.intermediate.verify(a.root.cert.publicKey)).toBe(true);
    expect(a.root.cert.subjectAltName).toBe('URI:spiffe://example.org');
    expect(snap.bundle.authorities.map((c) => c.fingerprint256)).toEqual([a.root.cert.fingerprint256]);
    // The intermediate lives its configured time (from now), the root its own; both backdated by a minute.
    expect(snap.signer.notAfterMs).toBe(Math.floor((time.nowMs() + TEST_LIFETIMES.intermediateTtlMs) / 1000) * 1000);
    expect(a.root.cert.validFromDate.getTime()).toBe(time.nowMs() - 60_000);
    expect(existsSync(join(tmp.dir, 'ca', STATE_FILE))).toBe(true);
    await parts.store.close();

    parts = await openTestCa(tmp.dir, time);
    expect(parts.events).toEqual([]);
    expect(parts.ca.current().signer.authorityId).toBe(a.record.id);
    expect(serialOf(parts.ca.current().signer.intermediate)).toBe(serialOf(snap.signer.intermediate));
  });

  test('a rotation keeps the old root in the bundle until no live SVID chains to it, then removes it', async () => {
    parts = await openTestCa(tmp.dir, time);
    const p = parts;
    const oldId = p.ca.current().signer.authorityId;
    const prepared = await p.ca.prepare();
    expect(prepared.state).toBe('prepared');
    // Prepared: in the bundle (proxies learn it first), not signing yet.
    expect(p.ca.current().bundle.authorities).toHaveLength(2);
    expect(p.ca.current().signer.authorityId).toBe(oldId);

    await p.ca.activate();
    expect(p.ca.current().signer.authorityId).toBe(prepared.id);
    expect(p.ca.current().authorities.map((a) => [a.record.id, a.record.state])).toEqual([
      [oldId, 'retired'],
      [prepared.id, 'active'],
    ]);
    expect(p.events.map((e) => e.event)).toEqual(['ca.created', 'ca.prepared', 'ca.activated', 'ca.retired']);

    await recordLive(p, oldId, time.nowMs() + 2 * 3_600_000);
    expect(await codeOf(p.ca.retire(oldId))).toBe('TESSERA_ERR_CA_AUTHORITY_IN_USE');
    time.advance(3_600_000);
    await p.ca.maintain();
    expect(p.ca.current().bundle.authorities).toHaveLength(2);

    time.advance(3_600_000); // the last SVID of the old authority has expired
    const events = await p.ca.maintain();
    expect(events).toEqual([{ event: 'ca.removed', authority: oldId, detail: { automatic: true } }]);
    expect(p.ca.current().bundle.authorities).toHaveLength(1);
    expect(p.ca.removedHistory().map((r) => r.id)).toEqual([oldId]);
    // Persisted: a restart does not bring the old root back, and its files are gone.
    await p.store.close();
    parts = await openTestCa(tmp.dir, time);
    expect(parts.ca.current().authorities.map((a) => a.record.id)).toEqual([prepared.id]);
    expect(existsSync(join(tmp.dir, 'ca', `${oldId}-root.key`))).toBe(false);
  });

  // Audit 62h F1: over a writable copy of a Secret (docs/kubernetes.md's rotation), the inventory knows no SVID of the
  // old authority, and it was removed 2 s after the activation; a Secret made from that copy refused every sidecar.
  test('a retired authority that no recorded SVID chains to stays svid.maxTtl after its retirement before it goes by itself', async () => {
    parts = await openTestCa(tmp.dir, time, { ...TEST_LIFETIMES, svidMaxTtlMs: DAY_MS });
    const p = parts;
    const oldId = p.ca.current().signer.authorityId;
    await p.ca.prepare();
    await p.ca.activate();
    time.advance(60_000);
    expect(await p.ca.maintain()).toEqual([]);
    time.advance(DAY_MS - 120_000);
    expect(await p.ca.maintain()).toEqual([]);
    expect(p.ca.current().bundle.authorities).toHaveLength(2);
    time.advance(60_000);
    expect(await p.ca.maintain()).toEqual([{ event: 'ca.removed', authority: oldId, detail: { automatic: true } }]);
    expect(p.ca.current().bundle.authorities).toHaveLength(1);
  });

  // Audit 62k F4: the floor held for the automatic removal only, and `tessera ca retire` on the writable copy removed
  // the old root at once.
  test('tessera ca retire is refused before svid.maxTtl has passed since the retirement, naming the time; --force removes it', async () => {
    parts = await openTestCa(tmp.dir, time, { ...TEST_LIFETIMES, svidMaxTtlMs: DAY_MS });
    const p = parts;
    const oldId = p.ca.current().signer.authorityId;
    await p.ca.prepare();
    await p.ca.activate();
    const refused = await p.ca.retire(oldId).then(() => null, (e: unknown) => e as Error & { code?: string });
    expect(refused?.code).toBe('TESSERA_ERR_CA_AUTHORITY_IN_USE');
    expect(refused?.message).toContain(`may live until ${new Date(time.nowMs() + DAY_MS).toISOString()}`);
    expect(await codeOf(p.ca.retire())).toBe('TESSERA_ERR_CA_AUTHORITY_IN_USE');
    expect(p.ca.current().bundle.authorities).toHaveLength(2);
    expect(await p.ca.retire(oldId, true)).toEqual([oldId]);
    expect(p.ca.current().bundle.authorities).toHaveLength(1);
  });

  test('the intermediate rotates at half-life, the previous one stays until it expires, then is pruned', async () => {
    parts = await openTestCa(tmp.dir, time);
    const p = parts;
    const first = serialOf(p.ca.current().signer.intermediate);
    time.advance(14 * DAY_MS); // before half of 30 days
    expect(await p.ca.maintain()).toEqual([]);
    const gen = p.ca.current().generation;

    time.advance(DAY_MS + 1);
    const events = await p.ca.maintain();
    expect(events.map((e) => [e.event, e.detail?.['previous']])).toEqual([['ca.intermediate_rotated', first]]);
    const second = serialOf(p.ca.current().signer.intermediate);
    expect(second).not.toBe(first);
    expect(p.ca.current().generation).toBe(gen + 1);
    expect(p.ca.current().authorities[0]!.record.intermediates.map((i) => i.serial)).toEqual([first, second]);
    // The new one is valid from now (backdated a minute) for the configured lifetime.
    expect(p.ca.current().signer.intermediate.validFromDate.getTime()).toBe(time.nowMs() - 60_000 - ((time.nowMs() - 60_000) % 1000));

    time.advance(15 * DAY_MS); // the first intermediate has expired (and the second reached its own half-life)
    await p.ca.maintain();
    const kept = p.ca.current().authorities[0]!.record.intermediates.map((i) => i.serial);
    expect(kept).toHaveLength(2);
    expect(kept[0]).toBe(second);
    const onDisk = JSON.parse(readFileSync(join(tmp.dir, 'ca', STATE_FILE), 'utf8')).authorities[0].intermediates.map((i: { serial: string }) => i.serial);
    expect(onDisk).toEqual(kept);
    expect(existsSync(join(tmp.dir, 'ca', `${p.ca.current().signer.authorityId}-int-${first.slice(0, 16)}.key`))).toBe(false);
  });

  test('an intermediate capped by its root is not rotated into a shorter one', async () => {
    parts = await openTestCa(tmp.dir, time, { rootTtlMs: 20 * DAY_MS, intermediateTtlMs: 30 * DAY_MS });
    const serial = serialOf(parts.ca.current().signer.intermediate);
    time.advance(15 * DAY_MS);
    expect(await parts.ca.maintain()).toEqual([]);
    expect(serialOf(parts.ca.current().signer.intermediate)).toBe(serial);
  });

  test('refusals: a second prepare, activate with nothing prepared, retiring the active or an unknown authority', async () => {
    parts = await openTestCa(tmp.dir, time);
    const active = parts.ca.current().signer.authorityId;
    expect(await codeOf(parts.ca.activate())).toBe('TESSERA_ERR_CA_NO_PREPARED');
    expect(await codeOf(parts.ca.retire(active))).toBe('TESSERA_ERR_CA_AUTHORITY_ACTIVE');
    expect(await codeOf(parts.ca.retire('nope'))).toBe('TESSERA_ERR_CA_UNKNOWN_AUTHORITY');
    const prepared = await parts.ca.prepare();
    expect(await codeOf(parts.ca.prepare())).toBe('TESSERA_ERR_CA_ALREADY_PREPARED');
    expect(await codeOf(parts.ca.activate(active))).toBe('TESSERA_ERR_CA_NO_PREPARED');
    // A refusal leaves the queue usable, and a prepared authority can be discarded.
    expect(await parts.ca.retire(prepared.id)).toEqual([prepared.id]);
    expect(parts.ca.current().bundle.authorities).toHaveLength(1);
  });

  test('concurrent mutations are serialized: two prepares at once make exactly one prepared authority', async () => {
    parts = await openTestCa(tmp.dir, time);
    const results = await Promise.allSettled([parts.ca.prepare(), parts.ca.prepare()]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(parts.ca.current().authorities.filter((a) => a.record.state === 'prepared')).toHaveLength(1);
  });

  test('a CA made for another trust domain is refused at open', async () => {
    parts = await openTestCa(tmp.dir, time);
    await parts.store.close();
    parts = undefined;
    const other = CaManager.open({
      store: filePersistence(new AuthorityStore({ dir: join(tmp.dir, 'ca') })),
      trustDomain: TrustDomain.parse('other.org'),
      lifetimes: TEST_LIFETIMES,
      clock: time,
      liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
    });
    expect(await codeOf(other)).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });
});
