// Audit 38c F2: a join token is spent by the commit that records the SVID it pays for, never before. An inventory
// write that fails leaves the token unspent (the next attempt is issued); a token spent by someone else between
// attestation and that commit discards the signed SVID (TESSERA_ERR_ATTESTATION_TOKEN_USED, nothing recorded, the
// refusal audited and counted), so one token still buys exactly one SVID. Audit 40a F3: a caller that gave up
// (cancelled, deadline passed) before the commit gets nothing committed: its token stays usable for its retry.
// Audit 40a F1: a token revoked or expired while its request was in flight is refused as REVOKED / EXPIRED, not USED.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TesseraError, isTesseraError } from '../../../../common/errors.js';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import type { IssuanceMetrics } from '../../../../control-plane/src/issuance/issuer.js';
import { hashToken } from '../../../../control-plane/src/store/join-token.js';
import type { InventoryStore } from '../../../../control-plane/src/store/store-contract.js';
import { HOUR_MS, openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { openTestRevocations, testIssuer } from '../../../helpers/test-issuer.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;

describe('Issuer: a join token is spent with the SVID it pays for', () => {
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  const clock = { nowMs: () => Date.now() };

  beforeEach(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    parts = await openTestCa(tmp.dir, clock);
  });
  afterEach(async () => {
    await parts.store.close();
    await cleanup();
  });

  const codeOf = (p: Promise<unknown>) => p.then(() => 'issued', (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`));
  const recorded = async () => (await parts.store.inventory.all()).filter((r) => r.spiffeId === WEB).map((r) => r.serial);
  const used = async (token: string) => (await parts.store.tokens.find(hashToken(token)))?.usedAtMs ?? null;
  const events = async () => (await parts.store.audit.recent('svid.')).map((e) => `${String(e['event'])} ${String(e['code'] ?? '')}`.trim());

  /** The store's inventory, but the next `fail` SVID writes (either kind) throw the store's "disk full" first. */
  const failingInventory = (fail: number): InventoryStore => {
    const real = parts.store.inventory;
    const refuse = () => {
      if (fail-- > 0) throw new TesseraError('TESSERA_ERR_STORE_FULL', 'injected: no room for the row');
    };
    return new Proxy(real, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (prop !== 'record' && prop !== 'recordWithToken') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        return async (...args: unknown[]) => {
          refuse();
          return (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
  };

  test('an inventory write that fails leaves the token unspent: the same token is issued on the next attempt', async () => {
    const revocations = await openTestRevocations(parts, clock);
    const t = testIssuer(parts, clock, revocations, undefined, { inventory: failingInventory(1) });
    await parts.store.tokens.create('tok-full', WEB, clock.nowMs(), HOUR_MS);
    const sign = async () => t.issuer.sign({ csrDer: await createCsr(generateKeyPair(), { uriSans: [WEB] }), evidence: { kind: 'join_token', token: 'tok-full' }, peerChain: [], caller: 'test', requestedTtlMs: 0 });
    expect(await codeOf(sign())).toBe('TESSERA_ERR_STORE_FULL');
    expect(await used('tok-full')).toBeNull();
    expect(await recorded()).toEqual([]);
    const svid = await sign();
    expect(await recorded()).toEqual([svid.serial]);
    expect(await used('tok-full')).not.toBeNull();
    expect(await codeOf(sign())).toBe('TESSERA_ERR_ATTESTATION_TOKEN_USED');
  });

  test('two requests with one token signed at once: one SVID issued and recorded, the other discarded as TOKEN_USED, audited and counted', async () => {
    const revocations = await openTestRevocations(parts, clock);
    const counted: string[] = [];
    const metrics: IssuanceMetrics = { clock, issued: (a) => counted.push(`issued ${a}`), refused: (code, a) => counted.push(`refused ${code} ${a}`) };
    const t = testIssuer(parts, clock, revocations, undefined, { metrics });
    await parts.store.tokens.create('tok-race', WEB, clock.nowMs(), HOUR_MS);
    const [csrA, csrB] = await Promise.all([createCsr(generateKeyPair(), { uriSans: [WEB] }), createCsr(generateKeyPair(), { uriSans: [WEB] })]);
    const sign = (csrDer: Uint8Array) => t.issuer.sign({ csrDer, evidence: { kind: 'join_token', token: 'tok-race' }, peerChain: [], caller: 'test', requestedTtlMs: 0 });
    const results = await Promise.allSettled([sign(csrA), sign(csrB)]);
    const issued = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.serial] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [isTesseraError(r.reason) ? r.reason.code : String(r.reason)] : []));
    expect(issued).toHaveLength(1);
    expect(refused).toEqual(['TESSERA_ERR_ATTESTATION_TOKEN_USED']);
    expect(await recorded()).toEqual(issued);
    expect((await events()).sort()).toEqual(['svid.issued', 'svid.refused TESSERA_ERR_ATTESTATION_TOKEN_USED']);
    expect(counted.sort()).toEqual(['issued join_token', 'refused TESSERA_ERR_ATTESTATION_TOKEN_USED join_token']);
  });

  test('a caller that gave up before the commit: refused CALLER_GONE, no inventory row, the token unspent and issued to the retry', async () => {
    const revocations = await openTestRevocations(parts, clock);
    let left = false;
    // The caller leaves while its key is judged (what a deadline passing in the RSA key-check queue looks like).
    const t = testIssuer(parts, clock, revocations, undefined, {
      keyWeakness: async () => {
        left = true;
        return null;
      },
    });
    await parts.store.tokens.create('tok-gone', WEB, clock.nowMs(), HOUR_MS);
    const csrDer = await createCsr(generateKeyPair(), { uriSans: [WEB] });
    const sign = (gone?: () => boolean) => t.issuer.sign({ csrDer, evidence: { kind: 'join_token', token: 'tok-gone' }, peerChain: [], caller: 'test', requestedTtlMs: 0, ...(gone ? { gone } : {}) });
    expect(await codeOf(sign(() => left))).toBe('TESSERA_ERR_ISSUANCE_CALLER_GONE');
    expect(await used('tok-gone')).toBeNull();
    expect(await recorded()).toEqual([]);
    expect(await events()).toEqual(['svid.refused TESSERA_ERR_ISSUANCE_CALLER_GONE']);
    const svid = await sign();
    expect(await recorded()).toEqual([svid.serial]);
    expect(await used('tok-gone')).not.toBeNull();
  });

  test.each([
    ['revoked', 'TESSERA_ERR_ATTESTATION_TOKEN_REVOKED'],
    ['expired', 'TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED'],
  ])('a token %s while its request is in flight: refused and audited with that code, not USED; nothing recorded', async (what, code) => {
    let skewMs = 0;
    const moving = { nowMs: () => Date.now() + skewMs };
    const revocations = await openTestRevocations(parts, moving);
    const rec = await parts.store.tokens.create(`tok-${what}`, WEB, moving.nowMs(), 60_000);
    // Between attestation and the commit (while the key is judged): the operator revokes it, or its time runs out.
    const keyWeakness = async () => {
      if (what === 'revoked') expect(await parts.store.tokens.revoke(rec.hash, moving.nowMs())).toBe(true);
      else skewMs = 61_000;
      return null;
    };
    const t = testIssuer(parts, moving, revocations, undefined, { keyWeakness });
    const sign = t.issuer.sign({ csrDer: await createCsr(generateKeyPair(), { uriSans: [WEB] }), evidence: { kind: 'join_token', token: `tok-${what}` }, peerChain: [], caller: 'test', requestedTtlMs: 0 });
    expect(await codeOf(sign)).toBe(code);
    expect(await used(`tok-${what}`)).toBeNull();
    expect(await recorded()).toEqual([]);
    expect(await events()).toEqual([`svid.refused ${code}`]);
  });
});
