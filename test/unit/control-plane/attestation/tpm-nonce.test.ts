// TPM attestation nonces: sealed by an HMAC and carrying their expiry, so issuing keeps no state; a changed byte,
// another key (another control plane) or a nonce past its expiry is refused with its code; the ledger spends each
// nonce once and forgets it after it expired.
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { InMemoryNonceLedger, TPM_NONCE_BYTES, TpmNonceIssuer } from '../../../../control-plane/src/attestation/tpm-nonce.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw e;
  }
  return 'ok';
}

describe('TpmNonceIssuer', () => {
  test('a nonce opens until its expiry, then is expired', () => {
    const time = new FakeTime();
    const issuer = new TpmNonceIssuer({ clock: time, ttlMs: 60_000 });
    const { nonce, expiresAtMs } = issuer.issue();
    expect(nonce.length).toBe(TPM_NONCE_BYTES);
    expect(expiresAtMs).toBe(time.nowMs() + 60_000);
    const opened = issuer.open(nonce);
    expect(opened.id).toMatch(/^[0-9a-f]{32}$/);
    expect(opened.expiresAtMs).toBe(expiresAtMs);
    time.set(expiresAtMs - 1);
    expect(codeOf(() => issuer.open(nonce))).toBe('ok');
    time.set(expiresAtMs);
    expect(codeOf(() => issuer.open(nonce))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_EXPIRED');
  });

  test('every changed byte, a shorter or longer nonce, and another key are unknown', () => {
    const time = new FakeTime();
    const issuer = new TpmNonceIssuer({ clock: time, ttlMs: 60_000 });
    const { nonce } = issuer.issue();
    for (let i = 0; i < nonce.length; i++) {
      const changed = Buffer.from(nonce);
      changed[i]! ^= 0x01;
      expect(codeOf(() => issuer.open(changed)), `byte ${i}`).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
    }
    expect(codeOf(() => issuer.open(nonce.subarray(1)))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
    expect(codeOf(() => issuer.open(Buffer.concat([nonce, Buffer.alloc(1)])))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
    expect(codeOf(() => issuer.open(Buffer.alloc(0)))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
    expect(codeOf(() => new TpmNonceIssuer({ clock: time, ttlMs: 60_000 }).open(nonce))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
  });

  test('replicas sharing the key open each other\'s nonces; a short key is refused', () => {
    const time = new FakeTime();
    const key = Buffer.alloc(32, 7);
    const a = new TpmNonceIssuer({ clock: time, ttlMs: 60_000, key });
    const b = new TpmNonceIssuer({ clock: time, ttlMs: 60_000, key });
    expect(codeOf(() => b.open(a.issue().nonce))).toBe('ok');
    expect(codeOf(() => new TpmNonceIssuer({ clock: time, ttlMs: 1, key: Buffer.alloc(16) }))).toBe('TESSERA_ERR_CONFIG_INVALID');
  });

  test('two nonces differ', () => {
    const issuer = new TpmNonceIssuer({ clock: new FakeTime(), ttlMs: 60_000 });
    expect(issuer.issue().nonce.equals(issuer.issue().nonce)).toBe(false);
  });
});

describe('InMemoryNonceLedger', () => {
  test('spends each id once, forgets it once expired, and caps its size', async () => {
    const ledger = new InMemoryNonceLedger(2);
    expect(await ledger.spendOnce('a', 100, 0)).toBe(true);
    expect(await ledger.spendOnce('a', 100, 50)).toBe(false);
    expect(await ledger.spendOnce('b', 120, 60)).toBe(true);
    await expect(ledger.spendOnce('c', 130, 70)).rejects.toMatchObject({ code: 'TESSERA_ERR_ISSUANCE_RATE_LIMITED' });
    // At 100 'a' has expired (its nonce is refused by the seal from then on): it leaves, 'c' fits.
    expect(await ledger.spendOnce('c', 200, 100)).toBe(true);
    expect(ledger.size).toBe(2);
    expect(await ledger.spendOnce('b', 120, 110)).toBe(false);
  });
});
