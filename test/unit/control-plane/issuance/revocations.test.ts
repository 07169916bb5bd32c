// The revocation service over real SQLite stores: bans are validated, canonical, audited and published; check()
// refuses a banned ID or serial with its code; join tokens are revoked only while unused; lifts are audited.
import { readFileSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { JoinTokenAttestor } from '../../../../control-plane/src/attestation/join-token-attestor.js';
import { Revocations } from '../../../../control-plane/src/issuance/revocations.js';
import { AuditLog } from '../../../../control-plane/src/store/audit-log.js';
import { openDatabase } from '../../../../control-plane/src/store/database.js';
import { InventoryStore } from '../../../../control-plane/src/store/inventory-store.js';
import { RevocationStore } from '../../../../control-plane/src/store/revocation-store.js';
import { TokenStore, tokenIdOf } from '../../../../control-plane/src/store/token-store.js';
import { makeTempDir } from '../../../helpers/run.js';

const TD = TrustDomain.parse('example.org');
const WEB = 'spiffe://example.org/ns/default/sa/web';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof TesseraError ? e.code : `not a TesseraError: ${String(e)}`;
  }
  return undefined;
}

describe('Revocations', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: DatabaseSync;
  let audit: AuditLog;
  let tokens: TokenStore;
  let inventory: InventoryStore;
  let revocations: Revocations;
  let published: number;
  let now: number;
  const auditLines = () => readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    db = openDatabase(join(dir, 'tessera.db'));
    audit = new AuditLog(db, join(dir, 'audit.log'));
    tokens = new TokenStore(db);
    inventory = new InventoryStore(db);
    published = 0;
    now = 1_000_000;
    const clock = { nowMs: () => now };
    revocations = new Revocations({ store: new RevocationStore(db), tokens, inventory, audit, trustDomain: TD, clock, onChange: () => published++ });
  });
  afterEach(async () => {
    audit.close();
    db.close();
    await cleanup();
  });

  test('banning an ID refuses it in check(), publishes once and writes one audit line; lifting undoes it', () => {
    expect(codeOf(() => revocations.check(WEB))).toBeUndefined();
    const r = revocations.ban({ kind: 'spiffe_id', value: WEB, reason: 'key leaked', createdBy: 'alice' });
    expect(r.created).toBe(true);
    expect(codeOf(() => revocations.check(WEB))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(codeOf(() => revocations.check('spiffe://example.org/ns/default/sa/api'))).toBeUndefined();
    expect(revocations.ban({ kind: 'spiffe_id', value: WEB, reason: 'again', createdBy: 'bob' }).created).toBe(false);
    expect(published).toBe(1);
    expect(revocations.denyList()).toEqual({ spiffeIds: [WEB], serials: [] });
    revocations.lift('spiffe_id', WEB, 'alice');
    expect(codeOf(() => revocations.check(WEB))).toBeUndefined();
    expect(published).toBe(2);
    expect(codeOf(() => revocations.lift('spiffe_id', WEB, 'alice'))).toBe('TESSERA_ERR_REVOCATION_NOT_FOUND');
    const lines = auditLines();
    expect(lines.map((l) => l['event'])).toEqual(['revocation.banned', 'revocation.lifted']);
    expect(lines[0]).toMatchObject({ result: 'ok', caller: 'admin.sock', kind: 'spiffe_id', spiffeId: WEB, reason: 'key leaked', createdBy: 'alice' });
  });

  test('a serial is stored canonically, refused in any spelling, and carries the SVID\'s NotAfter when known', () => {
    inventory.record({ serial: '0a11', spiffeId: WEB, authorityId: 'a', intermediateSerial: 'i', notBeforeMs: 0, notAfterMs: now + 60_000, issuedAtMs: 0, attestedAs: 'x', kind: 'attest', caller: 'c' });
    const { ban } = revocations.ban({ kind: 'serial', value: '0A:11', reason: '', createdBy: 'ops' });
    expect(ban).toMatchObject({ value: '0a11', notAfterMs: now + 60_000 });
    expect(codeOf(() => revocations.check(WEB, '0A11'))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    expect(codeOf(() => revocations.check(WEB, 'a11'))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    expect(codeOf(() => revocations.check(WEB, '0a12'))).toBeUndefined();
    expect(auditLines()[0]).toMatchObject({ event: 'revocation.banned', serial: '0a11', spiffeId: WEB });
    // Once that SVID has expired, proxies need not carry its serial any more.
    now += 60_000;
    expect(revocations.denyList().serials).toEqual([]);
  });

  test.each([
    ['spiffe_id', 'not-an-id'],
    ['spiffe_id', 'spiffe://example.org/ns/../sa/x'],
    ['spiffe_id', 'spiffe://example.org/tessera/control-plane'],
    ['serial', 'xyz'],
    ['serial', ''],
    ['serial', 'ff'.repeat(21)],
  ] as const)('refuses to ban %s %j', (kind, value) => {
    expect(codeOf(() => revocations.ban({ kind, value, reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(published).toBe(0);
  });

  test('a revoked join token fails attestation with its own code; by value or by the id audit lines show', () => {
    const attestor = new JoinTokenAttestor(tokens, { nowMs: () => now });
    const a = tokens.create('token-a', WEB, now, 60_000);
    const b = tokens.create('token-b', WEB, now, 60_000);
    expect(revocations.revokeToken({ token: 'token-a', reason: 'leaked in a ticket', createdBy: 'ops' }).revokedAtMs).toBe(now);
    expect(revocations.revokeToken({ tokenId: `join_token:${tokenIdOf(b.hash)}`, reason: '', createdBy: 'ops' }).hash).toBe(b.hash);
    expect(codeOf(() => attestor.attest('token-a'))).toBe('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED');
    expect(codeOf(() => attestor.attest('token-b'))).toBe('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED');
    // Revoking again is harmless; the audit trail has one line per token.
    revocations.revokeToken({ token: 'token-a', reason: '', createdBy: 'ops' });
    expect(auditLines().filter((l) => l['event'] === 'token.revoked').map((l) => l['attestedAs'])).toEqual([`join_token:${tokenIdOf(a.hash)}`, `join_token:${tokenIdOf(b.hash)}`]);
  });

  test('a used token cannot be revoked; unknown, ambiguous and malformed token names are refused', () => {
    const rec = tokens.create('used', WEB, now, 60_000);
    tokens.spend(rec.hash, now);
    expect(codeOf(() => revocations.revokeToken({ token: 'used', reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_TOKEN_USED');
    expect(codeOf(() => revocations.revokeToken({ token: 'never-created', reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_NOT_FOUND');
    expect(codeOf(() => revocations.revokeToken({ tokenId: '0123456789ab', reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_NOT_FOUND');
    expect(codeOf(() => revocations.revokeToken({ tokenId: 'zz', reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(codeOf(() => revocations.revokeToken({ reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(codeOf(() => revocations.revokeToken({ token: 'used', tokenId: tokenIdOf(rec.hash), reason: '', createdBy: 'ops' }))).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(auditLines().filter((l) => l['event'] === 'token.revoked')).toEqual([]);
  });
});
