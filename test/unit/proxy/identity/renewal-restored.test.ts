// ControlPlaneSvidSource started from an SVID kept across a restart (restore(), audit 52a F2): no attestation, a
// renewal at the SVID's own renewal point (at once when that is past, or when a stream opened with it is refused),
// and, when the control plane refuses that renewal, the SVID dropped (not ready) and the configured evidence used.
// A renewal that fails for another reason (the control plane away) keeps it, as for any SVID.
import type { X509Certificate } from 'node:crypto';
import { beforeEach, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { GRPC_STATUS } from '../../../../common/grpc-status-codes.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type AttestationEvidence, evidenceProvider } from '../../../../proxy/src/identity/attestation-evidence.js';
import { ControlPlaneSvidSource, type IssuedSvid, refusedByControlPlane, type SignedSvidRaw, type SvidSigner, type SvidSourceEvent } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import { SvidStateDir } from '../../../../proxy/src/identity/svid-state-dir.js';
import type { Timers } from '../../../../shared-io/timers.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const ID = 'spiffe://example.org/ns/default/sa/api';
const T0 = Date.UTC(2030, 0, 1);
const TD = TrustDomain.parse('example.org');
const tmp = tempDirPerTest();

/** Timers that never fire by themselves. */
class ManualTimers implements Pick<Timers, 'setTimeout' | 'clearTimeout'> {
  fn: (() => void) | undefined;
  setTimeout(fn: () => void) {
    this.fn = fn;
    return 1;
  }
  clearTimeout() {
    this.fn = undefined;
  }
}

/** The control plane: a real CA signing the real CSRs; `renewFails` makes a renewal fail with that error. */
class Signer implements SvidSigner {
  readonly calls: string[] = [];
  renewFails: Error | undefined;
  attestFails: Error | undefined;
  constructor(readonly ca: TestCa, readonly now: () => number) {}
  async attest(csr: Buffer, ev: AttestationEvidence) {
    this.calls.push(`attest:${'token' in ev ? ev.token : ev.kind}`);
    if (this.attestFails) throw this.attestFails;
    return this.#sign(csr);
  }
  async renew(csr: Buffer, current: IssuedSvid) {
    this.calls.push(`renew:${current.serial}`);
    if (this.renewFails) throw this.renewFails;
    return this.#sign(csr);
  }
  async #sign(csr: Buffer): Promise<SignedSvidRaw> {
    const leaf: X509Certificate = await issueCertificate({
      subject: 'O=Tessera Test',
      publicKey: (await parseCsr(csr)).publicKey,
      issuer: this.ca.intermediate.cert,
      signer: this.ca.intermediate.key,
      notBefore: new Date(this.now() - 5_000),
      notAfter: new Date(this.now() + 20_000),
      basicConstraints: { ca: false },
      keyUsage: ['digitalSignature'],
      uriSans: [ID],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    });
    return { chainDer: [leaf.raw, this.ca.intermediate.cert.raw], bundles: [{ trustDomain: 'example.org', authoritiesDer: [this.ca.root.cert.raw] }] };
  }
}

/** The control plane's refusal as the client reports it (control-plane-client.ts grpcCallError). */
const refusal = (status: 'PERMISSION_DENIED' | 'UNAUTHENTICATED', code: string) =>
  new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', `${status} ${code}: refused`, { grpcCode: GRPC_STATUS[status], controlPlaneCode: code });

describe('a restored SVID', () => {
  let ca: TestCa;
  let t: number;
  let timers: ManualTimers;
  let signer: Signer;
  let events: SvidSourceEvent[];
  let kept: IssuedSvid;

  beforeEach(async () => {
    ca = await TestCa.create({ nowMs: T0 });
    t = T0;
    timers = new ManualTimers();
    signer = new Signer(ca, () => t);
    events = [];
    // What a previous run of the proxy wrote: an SVID of 20 s issued at T0, read back as a restart would.
    const minted = await ca.mintSvid(ID, { notBefore: new Date(T0 - 5_000), notAfter: new Date(T0 + 20_000) });
    const state = new SvidStateDir(tmp.dir);
    await state.save({ chain: minted.chain, key: minted.key, serial: minted.leaf.serialNumber.toLowerCase() });
    const loaded = state.load({ trustDomain: TD, bootstrap: TrustBundle.parse(TD, ca.bundlePem()), nowMs: T0 });
    if (loaded.kind !== 'svid') throw new Error('not loaded');
    kept = loaded.svid;
  });

  const source = () =>
    new ControlPlaneSvidSource({ signer, evidence: evidenceProvider({ joinToken: 'spent-token' }), install: () => {}, trustDomain: TD, clock: { nowMs: () => t }, timers, random: () => 0.5, onEvent: (e) => events.push(e) });

  test('serves at once without attesting, and renews at its renewal point over mTLS', async () => {
    const s = source();
    await s.restore(kept);
    s.start();
    await s.tick();
    expect(s.readiness()).toEqual({ ready: true });
    expect(signer.calls).toEqual([]);
    expect(events).toEqual([expect.objectContaining({ kind: 'restore', result: 'success', serial: kept.serial })]);
    t = s.nextRenewalMs!;
    await s.tick();
    expect(signer.calls).toEqual([`renew:${kept.serial}`]);
    expect(s.current!.serial).not.toBe(kept.serial);
  });

  test('past its renewal point at the restart: renewed at the first look', async () => {
    t = T0 + 10_000;
    const s = source();
    await s.restore(kept);
    s.start();
    await s.tick();
    expect(signer.calls).toEqual([`renew:${kept.serial}`]);
  });

  for (const [status, code] of [
    ['PERMISSION_DENIED', 'TESSERA_ERR_REVOCATION_SERIAL_BANNED'],
    ['PERMISSION_DENIED', 'TESSERA_ERR_REVOCATION_ID_BANNED'],
    ['UNAUTHENTICATED', 'TESSERA_ERR_ATTESTATION_SVID_INVALID'],
  ] as const) {
    test(`renewal refused (${code}): dropped, not ready, and the configured evidence is used next`, async () => {
      const s = source();
      await s.restore(kept);
      signer.renewFails = refusal(status, code);
      signer.attestFails = refusal('UNAUTHENTICATED', 'TESSERA_ERR_ATTESTATION_TOKEN_USED');
      t = s.nextRenewalMs!;
      await s.tick();
      // A control-plane refusal is a `failure` (metrics.md); before audit 55b F5 it was counted `refused`.
      expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'failure', fallback: true });
      expect(s.current).toBeUndefined();
      const r = s.readiness();
      expect(!r.ready && r.reason).toContain(code);
      t += 1_000;
      await s.tick();
      expect(signer.calls).toEqual([`renew:${kept.serial}`, 'attest:spent-token']);
      const after = s.readiness();
      expect(!after.ready && after.reason).toMatch(/^no svid yet: .*TESSERA_ERR_ATTESTATION_TOKEN_USED/);
      // A fresh token (here: the control plane takes it) makes it ready with an attested SVID.
      signer.attestFails = undefined;
      t += 2_000;
      await s.tick();
      expect(events.at(-1)).toMatchObject({ kind: 'attest', result: 'success' });
      expect(s.readiness()).toEqual({ ready: true });
    });
  }

  test('a renewal that fails for another reason (control plane away, rate limited) keeps the SVID and retries', async () => {
    const s = source();
    await s.restore(kept);
    const away = new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE: connect ECONNREFUSED', { grpcCode: GRPC_STATUS.UNAVAILABLE });
    const limited = new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'RESOURCE_EXHAUSTED', { grpcCode: GRPC_STATUS.RESOURCE_EXHAUSTED, controlPlaneCode: 'TESSERA_ERR_ISSUANCE_RATE_LIMITED' });
    for (const e of [away, limited]) {
      signer.renewFails = e;
      t = Math.max(t, s.nextRenewalMs!);
      await s.tick();
      expect(s.current?.serial).toBe(kept.serial);
      expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'failure' });
      expect(events.at(-1)!.fallback).toBeUndefined();
    }
    expect(signer.calls.every((c) => c.startsWith('renew:'))).toBe(true);
  });

  test('a stream refused with it: renewed now rather than at its renewal point; an SVID renewed here is not', async () => {
    const s = source();
    await s.restore(kept);
    s.start();
    await s.tick();
    s.renewNowRefused(refusal('UNAUTHENTICATED', 'TESSERA_ERR_ATTESTATION_SVID_INVALID'));
    await s.tick();
    expect(signer.calls).toEqual([`renew:${kept.serial}`]);
    // The renewed one is the control plane's own answer: a stream refusal no longer moves its renewal, unless it
    // names a ban of it.
    s.renewNowRefused(refusal('UNAUTHENTICATED', 'TESSERA_ERR_ATTESTATION_SVID_INVALID'));
    await s.tick();
    expect(signer.calls).toHaveLength(1);
    s.renewNowRefused(refusal('PERMISSION_DENIED', 'TESSERA_ERR_REVOCATION_SERIAL_BANNED'));
    await s.tick();
    expect(signer.calls).toHaveLength(2);
  });

  test('what counts as the control plane refusing the SVID', () => {
    expect(refusedByControlPlane(refusal('PERMISSION_DENIED', 'TESSERA_ERR_REVOCATION_SERIAL_BANNED'))).toBe(true);
    expect(refusedByControlPlane(refusal('UNAUTHENTICATED', 'TESSERA_ERR_ATTESTATION_SVID_INVALID'))).toBe(true);
    // No code of the control plane's: a TLS or transport failure, not its decision.
    expect(refusedByControlPlane(new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAUTHENTICATED', { grpcCode: GRPC_STATUS.UNAUTHENTICATED }))).toBe(false);
    expect(refusedByControlPlane(new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE', { grpcCode: GRPC_STATUS.UNAVAILABLE, controlPlaneCode: 'TESSERA_ERR_ISSUANCE_BUSY' }))).toBe(false);
    expect(refusedByControlPlane(new Error('x'))).toBe(false);
    expect(refusedByControlPlane(undefined)).toBe(false);
  });
});

describe('a kept SVID out of its life by this host\'s clock (audit 53b F2: the clock may be what is wrong)', () => {
  let ca: TestCa;
  let t: number;
  let signer: Signer;
  let events: SvidSourceEvent[];
  const installedSerials: string[] = [];

  beforeEach(async () => {
    ca = await TestCa.create({ nowMs: T0 });
    t = T0;
    signer = new Signer(ca, () => t);
    events = [];
    installedSerials.length = 0;
  });

  /** What the state dir gives back at `nowMs` for an SVID valid from `fromMs` to `toMs`. */
  async function keptAt(nowMs: number, fromMs: number, toMs: number) {
    const minted = await ca.mintSvid(ID, { notBefore: new Date(fromMs), notAfter: new Date(toMs) });
    const state = new SvidStateDir(tmp.dir);
    await state.save({ chain: minted.chain, key: minted.key, serial: minted.leaf.serialNumber.toLowerCase() });
    const loaded = state.load({ trustDomain: TD, bootstrap: TrustBundle.parse(TD, ca.bundlePem()), nowMs });
    if (loaded.kind !== 'stale') throw new Error(`expected stale, got ${loaded.kind}`);
    return loaded;
  }

  // The identity store checks validity with this host's clock, as installIdentity does.
  const source = () =>
    new ControlPlaneSvidSource({
      signer,
      evidence: evidenceProvider({ joinToken: 'spent-token' }),
      install: (s) => {
        if (t < s.notBeforeMs || t >= s.notAfterMs) throw new Error('not valid by this clock');
        installedSerials.push(s.serial);
      },
      trustDomain: TD,
      clock: { nowMs: () => t },
      timers: new ManualTimers(),
      random: () => 0.5,
      onEvent: (e) => events.push(e),
    });

  test('not valid yet here (this host behind): held, nothing asked of the control plane, restored once valid', async () => {
    const kept = await keptAt(T0, T0 + 10_000, T0 + 40_000);
    expect(kept.reason).toBe('not_yet_valid');
    const s = source();
    s.restoreWhenValid(kept.svid);
    s.start();
    await s.tick();
    expect(signer.calls).toEqual([]);
    expect(s.readiness()).toMatchObject({ ready: false, reason: expect.stringContaining('the persisted SVID is held until') });
    t = T0 + 10_001;
    await s.tick();
    expect(signer.calls).toEqual([]);
    expect(installedSerials).toEqual([kept.svid.serial]);
    expect(events.at(-1)).toMatchObject({ kind: 'restore', result: 'success', serial: kept.svid.serial });
    expect(s.readiness()).toEqual({ ready: true });
  });

  test('expired here (this host ahead): renewed with it first; the control plane decides, no token spent', async () => {
    const kept = await keptAt(T0 + 25_000, T0 - 5_000, T0 + 20_000);
    expect(kept.reason).toBe('expired');
    t = T0 + 25_000;
    const s = source();
    s.renewExpiredFirst(kept.svid);
    s.start();
    await s.tick();
    expect(signer.calls).toEqual([`renew:${kept.svid.serial}`]);
    expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'success' });
    expect(s.readiness()).toEqual({ ready: true });
  });

  test('expired here and refused by the control plane too: dropped, then the configured evidence is used', async () => {
    const kept = await keptAt(T0 + 25_000, T0 - 5_000, T0 + 20_000);
    t = T0 + 25_000;
    signer.renewFails = refusal('UNAUTHENTICATED', 'TESSERA_ERR_ATTESTATION_SVID_INVALID');
    const s = source();
    s.renewExpiredFirst(kept.svid);
    s.start();
    await s.tick();
    // A control-plane refusal is a `failure` (metrics.md); before audit 55b F5 it was counted `refused`.
      expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'failure', fallback: true });
    t += 1_000;
    await s.tick();
    expect(signer.calls).toEqual([`renew:${kept.svid.serial}`, 'attest:spent-token']);
  });

  test('expired here and the control plane unreachable: kept, and the renewal is tried again after the backoff', async () => {
    const kept = await keptAt(T0 + 25_000, T0 - 5_000, T0 + 20_000);
    t = T0 + 25_000;
    signer.renewFails = new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE', { grpcCode: GRPC_STATUS.UNAVAILABLE });
    const s = source();
    s.renewExpiredFirst(kept.svid);
    s.start();
    await s.tick();
    signer.renewFails = undefined;
    t += 60_000;
    await s.tick();
    expect(signer.calls).toEqual([`renew:${kept.svid.serial}`, `renew:${kept.svid.serial}`]);
    expect(s.readiness()).toEqual({ ready: true });
  });
});
