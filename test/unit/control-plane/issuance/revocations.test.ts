// The revocation service over a real SQLite store: bans are validated, canonical, audited, published and
// announced; check() refuses a banned ID or serial with its code from memory; a ban made elsewhere (another replica
// on the same store) is enforced after a reload; join tokens are revoked only while unused; lifts are audited. A failed
// announcement or background reload is reported (logged through the FailureLog main.ts uses), never dropped.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { JoinTokenAttestor } from '../../../../control-plane/src/attestation/join-token-attestor.js';
import { Revocations, type RevocationsOptions } from '../../../../control-plane/src/issuance/revocations.js';
import { announcer } from '../../../../control-plane/src/lifecycle/follow-changes.js';
import { FailureLog } from '../../../../control-plane/src/lifecycle/failure-log.js';
import { tokenIdOf } from '../../../../control-plane/src/store/join-token.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ChangeTopic, ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { loud } from '../../../helpers/control-plane-parts.js';
import { makeTempDir } from '../../../helpers/run.js';

const TD = TrustDomain.parse('example.org');
const WEB = 'spiffe://example.org/ns/default/sa/web';

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    return e instanceof TesseraError ? e.code : `not a TesseraError: ${String(e)}`;
  }
  return undefined;
}

describe('Revocations', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: ControlPlaneStore;
  let revocations: Revocations;
  let published: number;
  let announced: ChangeTopic[];
  let now: number;
  const clock = { nowMs: () => now };
  const auditLines = () => readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    store = await openSqliteStore(dir);
    published = 0;
    announced = [];
    reloadFailures = [];
    now = 1_000_000;
    store.changes.subscribe('revocations', () => announced.push('revocations'));
    revocations = await open();
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });
  let reloadFailures: unknown[];
  const open = (o: Partial<RevocationsOptions> = {}) =>
    Revocations.open({ store: store.revocations, tokens: store.tokens, inventory: store.inventory, audit: store.audit, trustDomain: TD, clock, onChange: () => published++, announce: announcer(store.changes, loud)('revocations'), onReloadFailed: (e) => reloadFailures.push(e), ...o });

  test('banning an ID refuses it in check(), publishes once, announces and writes one audit line; lifting undoes it', async () => {
    expect(await codeOf(() => revocations.check(WEB))).toBeUndefined();
    const r = await revocations.ban({ kind: 'spiffe_id', value: WEB, reason: 'key leaked', createdBy: 'alice' });
    expect(r.created).toBe(true);
    // Held in memory: check() answers without the store.
    expect(await codeOf(() => revocations.check(WEB))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(await codeOf(() => revocations.check('spiffe://example.org/ns/default/sa/api'))).toBeUndefined();
    expect((await revocations.ban({ kind: 'spiffe_id', value: WEB, reason: 'again', createdBy: 'bob' })).created).toBe(false);
    expect(published).toBe(1);
    expect(revocations.denyList()).toEqual({ spiffeIds: [WEB], serials: [] });
    expect((await revocations.list()).map((b) => b.value)).toEqual([WEB]);
    await revocations.lift('spiffe_id', WEB, 'alice');
    expect(await codeOf(() => revocations.check(WEB))).toBeUndefined();
    expect(published).toBe(2);
    expect(await codeOf(() => revocations.lift('spiffe_id', WEB, 'alice'))).toBe('TESSERA_ERR_REVOCATION_NOT_FOUND');
    // Each change was announced for the other replicas (the local feed delivers on a microtask).
    await Promise.resolve();
    expect(announced).toEqual(['revocations', 'revocations']);
    // Reloading what this process holds already publishes nothing.
    await revocations.reload();
    expect(published).toBe(2);
    const lines = auditLines();
    expect(lines.map((l) => l['event'])).toEqual(['revocation.banned', 'revocation.lifted']);
    expect(lines[0]).toMatchObject({ result: 'ok', caller: 'admin.sock', kind: 'spiffe_id', spiffeId: WEB, reason: 'key leaked', createdBy: 'alice' });
  });

  test('a ban made on another replica (the same store) is enforced here after a reload, and published once', async () => {
    const elsewhere = await open();
    await elsewhere.ban({ kind: 'spiffe_id', value: WEB, reason: 'seen on replica 2', createdBy: 'bob' });
    // Not yet: this replica answers from memory until told.
    expect(await codeOf(() => revocations.check(WEB))).toBeUndefined();
    const before = published;
    await revocations.reload();
    expect(await codeOf(() => revocations.check(WEB))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(revocations.denyList().spiffeIds).toEqual([WEB]);
    // elsewhere's own ban published once (its onChange shares the counter), the reload here once more.
    expect(published).toBe(before + 1);
  });

  test('a ban whose announcement fails is held and published here, and the failure is logged with its topic (not dropped)', async () => {
    const lines: { msg: string; obj: Record<string, unknown> }[] = [];
    const rec = (obj: Record<string, unknown>, msg: string) => lines.push({ msg, obj });
    const failures = new FailureLog({ info: rec, warn: rec, error: rec }, clock);
    // main.ts's rule: announcer(changes, (topic, e) => health.failures.report('announcing a change failed', e, { topic }, topic)).
    const down = { announce: () => Promise.reject(new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', 'pg_notify: connection lost')) };
    const announce = announcer(down, (topic, e) => failures.report('announcing a change failed', e, { topic }, topic))('revocations');
    const here = await open({ announce });
    await here.ban({ kind: 'spiffe_id', value: WEB, reason: 'key leaked', createdBy: 'alice' });
    expect(await codeOf(() => here.check(WEB))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(published).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual([{ msg: 'announcing a change failed', obj: expect.objectContaining({ topic: 'revocations', code: 'TESSERA_ERR_STORE_UNAVAILABLE' }) }]);
  });

  test('a ban checkStored() finds is refused even when the reload it starts fails; that failure is reported', async () => {
    let failReads = false;
    const real = store.revocations;
    const readFails = () => Promise.reject(new TesseraError('TESSERA_ERR_STORE_IO', 'read failed'));
    const flaky = new Proxy(real, { get: (t, k) => (k === 'all' && failReads ? readFails : Reflect.get(t, k, t).bind(t)) });
    const here = await open({ store: flaky });
    await (await open()).ban({ kind: 'spiffe_id', value: WEB, reason: 'seen on replica 2', createdBy: 'bob' });
    failReads = true;
    expect(await codeOf(() => here.checkStored(WEB))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    await new Promise((r) => setImmediate(r));
    expect(reloadFailures.map((e) => (e as TesseraError).code)).toEqual(['TESSERA_ERR_STORE_IO']);
  });

  test('a serial is stored canonically, refused in any spelling, and carries the SVID\'s NotAfter when known', async () => {
    await store.inventory.record({ serial: '0a11', spiffeId: WEB, authorityId: 'a', intermediateSerial: 'i', notBeforeMs: 0, notAfterMs: now + 60_000, issuedAtMs: 0, attestedAs: 'x', kind: 'attest', caller: 'c' });
    const { ban } = await revocations.ban({ kind: 'serial', value: '0A:11', reason: '', createdBy: 'ops' });
    expect(ban).toMatchObject({ value: '0a11', notAfterMs: now + 60_000 });
    expect(await codeOf(() => revocations.check(WEB, '0A11'))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    expect(await codeOf(() => revocations.check(WEB, 'a11'))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    expect(await codeOf(() => revocations.check(WEB, '0a12'))).toBeUndefined();
    expect(auditLines()[0]).toMatchObject({ event: 'revocation.banned', serial: '0a11', spiffeId: WEB });
    // Once that SVID has expired, proxies need not carry its serial any more.
    now += 60_000;
    expect(revocations.denyList().serials).toEqual([]);
  });

  test('a serial no SVID in the inventory has (a cut one, as tessera up printed them) is refused, nothing banned; --force bans it', async () => {
    const full = '11e3fe9d31c2a4b5c6d7e8f90a1b2c3d';
    await store.inventory.record({ serial: full, spiffeId: WEB, authorityId: 'a', intermediateSerial: 'i', notBeforeMs: 0, notAfterMs: now + 60_000, issuedAtMs: 0, attestedAs: 'x', kind: 'attest', caller: 'c' });
    for (const cut of [full.slice(0, 12), '11:e3:fe']) {
      const err = await revocations.ban({ kind: 'serial', value: cut, reason: 'truncated', createdBy: 'ops' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TesseraError);
      expect((err as TesseraError).code).toBe('TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL');
      expect((err as TesseraError).message).toContain('tessera certs list');
    }
    expect(await store.revocations.all()).toEqual([]);
    expect(published).toBe(0);
    // Forced (a certificate this control plane did not issue): banned, without a NotAfter to drop it by.
    const forced = await revocations.ban({ kind: 'serial', value: 'ab:cd', reason: 'edge client of another CA', createdBy: 'ops', force: true });
    expect(forced).toMatchObject({ created: true, ban: { value: 'abcd', notAfterMs: null } });
    expect(await codeOf(() => revocations.check(WEB, 'abcd'))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    // Asking again without --force finds the ban already there (idempotent, as for any ban).
    expect((await revocations.ban({ kind: 'serial', value: 'abcd', reason: '', createdBy: 'ops' })).created).toBe(false);
    // The whole serial needs no --force.
    expect((await revocations.ban({ kind: 'serial', value: full, reason: '', createdBy: 'ops' })).created).toBe(true);
  });

  test.each([
    ['spiffe_id', 'not-an-id'],
    ['spiffe_id', 'spiffe://example.org/ns/../sa/x'],
    ['spiffe_id', 'spiffe://example.org/tessera/control-plane'],
    ['serial', 'xyz'],
    ['serial', ''],
    ['serial', 'ff'.repeat(21)],
  ] as const)('refuses to ban %s %j', async (kind, value) => {
    expect(await codeOf(() => revocations.ban({ kind, value, reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(published).toBe(0);
    expect(await store.revocations.all()).toEqual([]);
  });

  test('a revoked join token fails attestation with its own code; by value or by the id audit lines show', async () => {
    const attestor = new JoinTokenAttestor(store.tokens, clock);
    const a = await store.tokens.create('token-a', WEB, now, 60_000);
    const b = await store.tokens.create('token-b', WEB, now, 60_000);
    expect((await revocations.revokeToken({ token: 'token-a', reason: 'leaked in a ticket', createdBy: 'ops' })).revokedAtMs).toBe(now);
    expect((await revocations.revokeToken({ tokenId: `join_token:${tokenIdOf(b.hash)}`, reason: '', createdBy: 'ops' })).hash).toBe(b.hash);
    expect(await codeOf(() => attestor.attest('token-a'))).toBe('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED');
    expect(await codeOf(() => attestor.attest('token-b'))).toBe('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED');
    // Revoking again is harmless; the audit trail has one line per token.
    await revocations.revokeToken({ token: 'token-a', reason: '', createdBy: 'ops' });
    expect(auditLines().filter((l) => l['event'] === 'token.revoked').map((l) => l['attestedAs'])).toEqual([`join_token:${tokenIdOf(a.hash)}`, `join_token:${tokenIdOf(b.hash)}`]);
  });

  test('a used token cannot be revoked; unknown, ambiguous and malformed token names are refused', async () => {
    const rec = await store.tokens.create('used', WEB, now, 60_000);
    expect(await store.inventory.recordWithToken({ serial: '0a', spiffeId: WEB, authorityId: 'A', intermediateSerial: 'i1', notBeforeMs: now, notAfterMs: now + 1, issuedAtMs: now, attestedAs: `join_token:${tokenIdOf(rec.hash)}`, kind: 'attest', caller: 'test' }, rec.hash, now)).toBe(true);
    const revoke = (req: Parameters<Revocations['revokeToken']>[0]) => codeOf(() => revocations.revokeToken(req));
    expect(await revoke({ token: 'used', reason: '', createdBy: 'ops' })).toBe('TESSERA_ERR_REVOCATION_TOKEN_USED');
    expect(await revoke({ token: 'never-created', reason: '', createdBy: 'ops' })).toBe('TESSERA_ERR_REVOCATION_NOT_FOUND');
    expect(await revoke({ tokenId: '0123456789ab', reason: '', createdBy: 'ops' })).toBe('TESSERA_ERR_REVOCATION_NOT_FOUND');
    expect(await revoke({ tokenId: 'zz', reason: '', createdBy: 'ops' })).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(await revoke({ reason: '', createdBy: 'ops' })).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(await revoke({ token: 'used', tokenId: tokenIdOf(rec.hash), reason: '', createdBy: 'ops' })).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(auditLines().filter((l) => l['event'] === 'token.revoked')).toEqual([]);
  });
});
