// Audit F4: a ban committed by one replica holds on another before its announcement arrives. Two Revocations share
// one store as two replicas share one database; the issuing one never hears of the other's bans (no change feed
// between them), so only the read of the database right before signing can refuse: a banned serial renewing, a
// banned ID redeeming a join token (which stays unspent), the deny-list catching up after such a refusal.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import { canonicalSerial } from '../../../../common/pki/serial.js';
import type { SignResult } from '../../../../control-plane/src/issuance/issuer.js';
import type { Revocations } from '../../../../control-plane/src/issuance/revocations.js';
import { hashToken } from '../../../../control-plane/src/store/join-token.js';
import { HOUR_MS, openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { openTestRevocations, type TestIssuer, testIssuer } from '../../../helpers/test-issuer.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;

describe('Issuer: bans committed elsewhere, not yet in this replica’s memory', () => {
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  let here: Revocations;
  let there: Revocations;
  let t: TestIssuer;
  const clock = { nowMs: () => Date.now() };

  beforeEach(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    parts = await openTestCa(tmp.dir, clock);
    const open = () => openTestRevocations(parts, clock);
    here = await open();
    there = await open();
    t = testIssuer(parts, clock, here);
  });
  afterEach(async () => {
    await parts.store.close();
    await cleanup();
  });

  const token = async (t: string) => {
    await parts.store.tokens.create(t, WEB, clock.nowMs(), HOUR_MS);
    return t;
  };
  const codeOf = (p: Promise<unknown>) => p.then(() => 'issued', (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`));
  const byToken = async (key: KeyPair, token: string) => t.issuer.sign({ csrDer: await createCsr(key, { uriSans: [WEB] }), evidence: { kind: 'join_token', token }, peerChain: [], caller: 'test', requestedTtlMs: 0 });
  const renewal = (key: KeyPair, svid: SignResult) => t.renew(key, svid, WEB);

  test('a serial banned on the other replica cannot renew here, though this replica’s memory has not heard of it', async () => {
    const key = generateKeyPair();
    const svid = await byToken(key, await token('tok-serial'));
    await there.ban({ kind: 'serial', value: svid.serial, reason: 'leaked', createdBy: 'alice' });
    // The in-memory check alone still admits it: the window the audit found.
    expect(() => here.check(WEB, svid.serial)).not.toThrow();
    expect(await codeOf(renewal(key, svid))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    // The refusal read the ban into memory: the deny-list this replica publishes has it now.
    await expect.poll(() => here.denyList().serials).toContain(canonicalSerial(svid.serial));
  });

  test('a join token of an ID banned on the other replica is refused here and stays unspent', async () => {
    await token('tok-id');
    await there.ban({ kind: 'spiffe_id', value: WEB, reason: 'decommissioned', createdBy: 'alice' });
    expect(() => here.check(WEB)).not.toThrow();
    expect(await codeOf(byToken(generateKeyPair(), 'tok-id'))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect((await parts.store.tokens.find(hashToken('tok-id')))?.usedAtMs).toBeNull();
    // Lifted on the other replica: refused here until the lift's announcement arrives (fail closed), then the same
    // token works.
    await there.lift('spiffe_id', WEB, 'alice');
    await here.reload();
    expect(await codeOf(byToken(generateKeyPair(), 'tok-id'))).toBe('issued');
  });

  test('a renewal of an SVID banned nowhere is issued (one read, no refusal)', async () => {
    const key = generateKeyPair();
    const svid = await byToken(key, await token('tok-clean'));
    expect(await codeOf(renewal(key, svid))).toBe('issued');
  });
});
