// ControlPlaneSvidSource on a host whose clock is off the control plane's (audit 52a F1): a simulated half hour of looks
// with a proxy clock ahead by 0.4, 0.6 and 0.95 of the SVID lifetime and behind by 0.5 of it, against a fake control
// plane on its own clock that signs real CSRs (test CA), answers with its clock in a `date` header as the real one
// does, and refuses a renewal with an SVID expired by its clock. Each renewal must come when a synchronized proxy's
// would, at half the lifetime by the control plane's clock: as many renewals as without skew, none late; retries
// and the last-10 % readiness rule follow the control plane's clock too. Before the fix a proxy ahead renewed at its
// first look after each answer (every second from 0.5 on), one behind renewed after the control plane's expiry.
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type AttestationEvidence, evidenceProvider } from '../../../../proxy/src/identity/attestation-evidence.js';
import { installIdentity } from '../../../../proxy/src/identity/bundle-merge.js';
import { ControlPlaneSvidSource, type IssuedSvid, type SignedSvidRaw, type SvidSigner } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import type { Timers } from '../../../../shared-io/timers.js';
import { TestCa } from '../../../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const T0 = Date.UTC(2030, 0, 1);
/**
 * Simulated time per run: 20 renewals of a 185 s SVID, each one a real CSR and a real signature (the file's cost).
 * Both failures of the audit show from the first renewal point on: ahead, a renewal every second (LOOPING within
 * 150 s); behind, a renewal after expiry. Each run's renewals are checked one by one, so an hour adds no new case.
 */
const SPAN = 1_800_000;
/** The audit's control plane: `svid: { ttl: 3m, backdate: 5s }`, a 185 s lifetime. */
const TTL = 180_000;
const BACKDATE = 5_000;
const LIFETIME = TTL + BACKDATE;
/** Past this many renewals in the simulated span the proxy is looping: stop (a loop is ~1,800 of them). */
const LOOPING = 150;

/** The armed look; the simulation fires it after moving the clocks by its delay. */
class ManualTimers implements Pick<Timers, 'setTimeout' | 'clearTimeout'> {
  fn: (() => void) | undefined;
  ms = 0;
  setTimeout(fn: () => void, ms: number) {
    this.fn = fn;
    this.ms = ms;
    return 1;
  }
  clearTimeout() {
    this.fn = undefined;
  }
}

/** The control plane, on the true clock `cp.t`: SVIDs as svid-policy.ts makes them, the renewals it was asked for. */
class FakeControlPlane implements SvidSigner {
  /** The share of the presented SVID's lifetime gone, by this clock, at each renewal it signed. */
  readonly renewedAt: number[] = [];
  /** Renewals refused: the presented SVID had expired by this clock (a peer would refuse it too). */
  expiredRenewals = 0;
  /** Unreachable: renewals fail (their times, by this clock, are kept). */
  down = false;
  readonly failedAt: number[] = [];
  constructor(
    readonly ca: TestCa,
    readonly cp: { t: number },
    readonly proxyNowMs: () => number,
    readonly sendsDate: boolean,
  ) {}
  async attest(csr: Buffer, _ev: AttestationEvidence) {
    return this.#sign(csr);
  }
  async renew(csr: Buffer, current: IssuedSvid) {
    if (this.down) {
      this.failedAt.push(this.cp.t);
      throw new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE: connect ECONNREFUSED');
    }
    if (this.cp.t >= current.notAfterMs) {
      this.expiredRenewals++;
      throw new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAUTHENTICATED: the client SVID has expired');
    }
    this.renewedAt.push((this.cp.t - current.notBeforeMs) / (current.notAfterMs - current.notBeforeMs));
    return this.#sign(csr);
  }
  async #sign(csr: Buffer): Promise<SignedSvidRaw> {
    const sentAtMs = this.proxyNowMs();
    const leaf = await issueCertificate({
      subject: 'O=Tessera Test',
      publicKey: (await parseCsr(csr)).publicKey,
      issuer: this.ca.intermediate.cert,
      signer: this.ca.intermediate.key,
      notBefore: new Date(Math.ceil((this.cp.t - BACKDATE) / 1000) * 1000),
      notAfter: new Date(Math.floor((this.cp.t + TTL) / 1000) * 1000),
      basicConstraints: { ca: false },
      keyUsage: ['digitalSignature'],
      uriSans: [ID],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    });
    return {
      chainDer: [leaf.raw, this.ca.intermediate.cert.raw],
      bundles: [{ trustDomain: 'example.org', authoritiesDer: [this.ca.root.cert.raw] }],
      timing: { sentAtMs, receivedAtMs: this.proxyNowMs(), controlPlaneDateMs: this.sendsDate ? Math.floor(this.cp.t / 1000) * 1000 : undefined },
    };
  }
}

interface Run {
  readonly renewedAt: readonly number[];
  readonly expiredRenewals: number;
  readonly offsets: readonly number[];
  /** Looks after the first SVID at which the proxy was not ready. */
  readonly notReadyLooks: number;
}

/** One simulated span of a proxy whose clock reads the control plane's + `skewMs`. */
async function simulate(ca: TestCa, skewMs: number, sendsDate = true): Promise<Run> {
  const cp = { t: T0 };
  const proxyClock = { nowMs: () => cp.t + skewMs };
  const timers = new ManualTimers();
  const signer = new FakeControlPlane(ca, cp, proxyClock.nowMs, sendsDate);
  // The identity store judges each answer by this host's clock, as the proxy's does (a chain not valid yet is held).
  const store = new IdentityStore(proxyClock);
  const bundles = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
  const offsets: number[] = [];
  const s = new ControlPlaneSvidSource({
    signer,
    evidence: evidenceProvider({ joinToken: 'tok-1' }),
    install: (svid) => installIdentity(store, svid, bundles, bundles),
    trustDomain: TrustDomain.parse('example.org'),
    clock: proxyClock,
    timers,
    random: () => 0.5,
    onClockOffset: (ms) => offsets.push(ms),
  });
  s.start();
  await s.tick();
  let notReadyLooks = 0;
  while (cp.t < T0 + SPAN && signer.renewedAt.length + signer.expiredRenewals < LOOPING) {
    cp.t += timers.ms;
    timers.fn?.();
    await s.tick();
    if (s.current && !s.readiness().ready) notReadyLooks++;
  }
  s.stop();
  return { renewedAt: signer.renewedAt, expiredRenewals: signer.expiredRenewals, offsets, notReadyLooks };
}

describe('renewal on a host whose clock is off the control plane', () => {
  test('ahead by 0.4, 0.6, 0.95 or behind by 0.5 of the lifetime: renewals as often as without skew, each at half the lifetime by the control plane', async () => {
    const ca = await TestCa.create({ nowMs: T0 });
    const synced = await simulate(ca, 0);
    // 185 s SVIDs that arrive 5 s old and renew at half their lifetime: one every 87.5 s.
    expect(synced.renewedAt.length).toBe(Math.floor((SPAN - 87_500) / 87_500) + 1);
    expect(synced.offsets.every((o) => o === 0)).toBe(true);
    for (const share of [0.4, 0.6, 0.95, -0.5]) {
      const skewMs = Math.round(share * LIFETIME);
      const r = await simulate(ca, skewMs);
      const what = `skew ${share} x lifetime`;
      expect(r.expiredRenewals, what).toBe(0);
      // As many renewals as the synchronized proxy (each answer's offset estimate is good to a second).
      expect(Math.abs(r.renewedAt.length - synced.renewedAt.length), what).toBeLessThanOrEqual(1);
      // Each at half the lifetime by the control plane's clock, so before expiry for peers whose clocks are right.
      for (const at of r.renewedAt) {
        expect(at, what).toBeGreaterThan(0.49);
        expect(at, what).toBeLessThan(0.52);
      }
      // The offset is seen, to the second, from every answer.
      for (const o of r.offsets) expect(Math.abs(o - skewMs), what).toBeLessThanOrEqual(1_000);
      // Ahead, the SVID serves its whole life; behind by more than the backdate, each answer waits (held) until it is
      // valid by this host's clock, and that wait is taken from the end of the SVID it replaces.
      if (share > 0) expect(r.notReadyLooks, what).toBe(0);
    }
  }, 30_000);

  test('ahead by 0.6 of the lifetime, the control plane away: retries denser up to expiry and not ready for the last 10 %, by the control plane\'s clock', async () => {
    const ca = await TestCa.create({ nowMs: T0 });
    const cp = { t: T0 };
    const skewMs = Math.round(0.6 * LIFETIME);
    const proxyClock = { nowMs: () => cp.t + skewMs };
    const timers = new ManualTimers();
    const signer = new FakeControlPlane(ca, cp, proxyClock.nowMs, true);
    const s = new ControlPlaneSvidSource({ signer, evidence: evidenceProvider({ joinToken: 'tok-1' }), install: () => {}, trustDomain: TrustDomain.parse('example.org'), clock: proxyClock, timers, random: () => 0.5 });
    s.start();
    await s.tick();
    const svid = s.current!;
    signer.down = true;
    const lastTenth = svid.notAfterMs - LIFETIME / 10;
    const readiness: { at: number; ready: boolean }[] = [];
    while (cp.t < svid.notAfterMs) {
      cp.t += timers.ms;
      timers.fn?.();
      await s.tick();
      readiness.push({ at: cp.t, ready: s.readiness().ready });
    }
    s.stop();
    // Retried from the renewal point on, never giving up on the SVID before the control plane would refuse it.
    expect(signer.failedAt[0]! - svid.notBeforeMs).toBeGreaterThan(0.49 * LIFETIME);
    // Each wait at most a quarter of the life left then (or the 1 s floor), so retries get denser towards expiry.
    for (let i = 1; i < signer.failedAt.length; i++) {
      const [prev, next] = [signer.failedAt[i - 1]!, signer.failedAt[i]!];
      expect(next - prev, `retry ${i}`).toBeLessThanOrEqual(Math.max(1_000, (svid.notAfterMs - prev) / 4) + 1_000);
    }
    expect(svid.notAfterMs - signer.failedAt.at(-1)!).toBeLessThanOrEqual(2_000);
    // Ready until the last 10 % of its life for peers, not ready within it (the estimate is good to a second).
    for (const r of readiness) {
      if (r.at < lastTenth - 1_000) expect(r, 'before the last 10 %').toMatchObject({ ready: true });
      else if (r.at >= lastTenth + 1_000) expect(r, 'in the last 10 %').toMatchObject({ ready: false });
    }
  });

  test('behind by more than the lifetime: an answer that would be valid here only after it expired for peers is not held', async () => {
    const ca = await TestCa.create({ nowMs: T0 });
    const cp = { t: T0 };
    const proxyClock = { nowMs: () => cp.t - Math.round(1.1 * LIFETIME) };
    const timers = new ManualTimers();
    const store = new IdentityStore(proxyClock);
    const bundles = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
    const signer = new FakeControlPlane(ca, cp, proxyClock.nowMs, true);
    const s = new ControlPlaneSvidSource({ signer, evidence: evidenceProvider({ joinToken: 'tok-1' }), install: (svid) => installIdentity(store, svid, bundles, bundles), trustDomain: TrustDomain.parse('example.org'), clock: proxyClock, timers, random: () => 0.5 });
    s.start();
    await s.tick();
    expect(s.lastError).toMatch(/not_yet_valid/);
    expect(s.lastError).not.toMatch(/held/);
    while (cp.t < T0 + 2 * LIFETIME) {
      cp.t += timers.ms;
      timers.fn?.();
      await s.tick();
    }
    s.stop();
    // Installed then, it would have been served (and /ready true) with a certificate every peer refuses as expired.
    expect(store.current).toBeUndefined();
    expect(s.readiness().ready).toBe(false);
  });

  test('without a date header in the answer: NotBefore alone bounds the offset; no loop, never late', async () => {
    const ca = await TestCa.create({ nowMs: T0 });
    const synced = await simulate(ca, 0, false);
    expect(synced.offsets.every((o) => o === 0)).toBe(true);
    for (const share of [0.4, 0.6, 0.95, -0.5]) {
      const r = await simulate(ca, Math.round(share * LIFETIME), false);
      const what = `skew ${share} x lifetime`;
      expect(r.expiredRenewals, what).toBe(0);
      // Ahead, the estimate may fall short by up to a third of the lifetime (the largest backdate the control plane
      // allows): a renewal at a sixth of it at the soonest, three times the usual rate at most, never a loop.
      expect(r.renewedAt.length, what).toBeLessThanOrEqual(3 * synced.renewedAt.length);
      for (const at of r.renewedAt) {
        expect(at, what).toBeGreaterThan(0.16);
        expect(at, what).toBeLessThan(0.55);
      }
    }
  }, 30_000);
});
