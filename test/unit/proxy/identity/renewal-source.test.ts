// ControlPlaneSvidSource driven by a fake wall clock and a manual tick: a clock moved past the renewal point
// renews at the next tick (no long timer), failures back off, readiness follows the last-10 % rule, bad answers
// are refused. The signer is a real CA signing the real CSRs (test-ca), standing in for the control plane.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, test, vi } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type AttestationEvidence, evidenceProvider } from '../../../../proxy/src/identity/attestation-evidence.js';
import { installIdentity } from '../../../../proxy/src/identity/bundle-merge.js';
import {
  ControlPlaneSvidSource,
  type IssuedSvid,
  type SignedSvidRaw,
  type SvidSigner,
  type SvidSourceEvent,
} from '../../../../proxy/src/identity/control-plane-svid-source.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import type { Timers } from '../../../../shared-io/timers.js';
import { TestCa } from '../../../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const TTL = 20_000;
const T0 = Date.UTC(2030, 0, 1);

class FakeClock {
  t = T0;
  nowMs = () => this.t;
}

/** Timers that never fire by themselves: the test fires the armed look when it wants. */
class ManualTimers implements Pick<Timers, 'setTimeout' | 'clearTimeout'> {
  fn: (() => void) | undefined;
  ms = 0;
  /** Timers armed and not yet fired or cleared. */
  pending = 0;
  setTimeout(fn: () => void, ms: number) {
    this.pending++;
    this.fn = () => {
      this.pending--;
      this.fn = undefined;
      fn();
    };
    this.ms = ms;
    return 1;
  }
  clearTimeout() {
    if (this.fn) this.pending--;
    this.fn = undefined;
  }
}

class CaSigner implements SvidSigner {
  readonly calls: string[] = [];
  failWith: Error | undefined;
  /** Sign with a key other than the CSR's (a broken control plane). */
  wrongKey = false;
  id = ID;
  /** Answer with this CA's bundle instead of the signing one (a control plane that mixed up its CAs). */
  bundleFrom: TestCa | undefined;
  /** Lifetime of the SVIDs signed from now on (NotBefore is 5 s in the past). */
  ttlMs = TTL;
  /** NotBefore relative to the signer's clock (a control plane whose clock is ahead of the proxy's signs later). */
  notBeforeOffsetMs = -5_000;
  constructor(public ca: TestCa, readonly clock: FakeClock) {}
  async attest(csr: Buffer, ev: AttestationEvidence) {
    this.calls.push(`attest:${ev.kind}:${'token' in ev ? ev.token : ''}`);
    return this.#sign(csr);
  }
  async renew(csr: Buffer, current: IssuedSvid) {
    this.calls.push(`renew:${current.serial}`);
    expect((await parseCsr(csr)).uriSans).toEqual([current.id.toString()]);
    return this.#sign(csr);
  }
  async #sign(csr: Buffer): Promise<SignedSvidRaw> {
    if (this.failWith) throw this.failWith;
    const { publicKey } = await parseCsr(csr);
    const leaf: X509Certificate = await issueCertificate({
      subject: 'O=Tessera Test',
      publicKey: this.wrongKey ? generateKeyPair().publicKey : publicKey,
      issuer: this.ca.intermediate.cert,
      signer: this.ca.intermediate.key,
      notBefore: new Date(this.clock.t + this.notBeforeOffsetMs),
      notAfter: new Date(this.clock.t + this.ttlMs),
      basicConstraints: { ca: false },
      keyUsage: ['digitalSignature'],
      uriSans: [this.id],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    });
    return { chainDer: [leaf.raw, this.ca.intermediate.cert.raw], bundles: [{ trustDomain: 'example.org', authoritiesDer: [(this.bundleFrom ?? this.ca).root.cert.raw] }] };
  }
}

describe('ControlPlaneSvidSource', () => {
  let ca: TestCa;
  let clock: FakeClock;
  let timers: ManualTimers;
  let signer: CaSigner;
  let installed: IssuedSvid[];
  let events: SvidSourceEvent[];

  beforeEach(async () => {
    ca = await TestCa.create({ nowMs: T0 });
    clock = new FakeClock();
    timers = new ManualTimers();
    signer = new CaSigner(ca, clock);
    installed = [];
    events = [];
  });

  const makeSource = (evidence = evidenceProvider({ joinToken: 'tok-1' }), install?: (s: IssuedSvid) => void) =>
    new ControlPlaneSvidSource({
      signer,
      evidence,
      install: install ?? ((s) => void installed.push(s)),
      trustDomain: TrustDomain.parse('example.org'),
      clock,
      timers,
      random: () => 0.5,
      onEvent: (e) => events.push(e),
    });

  /** The armed look fires; awaited so the attempt has finished. */
  const tick = async (s: ControlPlaneSvidSource) => {
    timers.fn!();
    await s.tick();
  };

  test('looks again when the renewal point is due, at most tickMs (default 10 s) later, one timer at a time', async () => {
    const s = makeSource();
    s.start();
    await s.firstSvid();
    // The renewal point is 7.5 s away (half of the 25 s from NotBefore): the next look is then, not every second.
    const first = installed[0]!;
    expect(s.nextRenewalMs! - clock.t).toBe(7_500);
    expect(timers.ms).toBe(7_500);
    expect(timers.pending).toBe(1);
    clock.t += 7_500;
    await tick(s);
    expect(signer.calls).toEqual(['attest:join_token:tok-1', `renew:${first.serial}`]);
    expect(timers.pending).toBe(1);
    // An hour-long SVID: the wall clock is still read every 10 s while the renewal point is far.
    signer.ttlMs = 3_600_000;
    clock.t = s.nextRenewalMs!;
    await tick(s);
    expect(installed).toHaveLength(3);
    expect(timers.ms).toBe(10_000);
    s.stop();
    expect(timers.pending).toBe(0);
  });

  test('a failed attempt is looked at again at its retry time (never sooner than a second)', async () => {
    const s = makeSource();
    signer.failWith = new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE');
    s.start();
    await s.tick();
    expect(s.consecutiveFailures).toBe(1);
    // The first retry is 0.5 s away (backoff); the floor makes it 1 s.
    expect(timers.ms).toBe(1_000);
    for (let i = 0; i < 4; i++) {
      clock.t += timers.ms;
      await tick(s);
    }
    expect(s.consecutiveFailures).toBe(5);
    // 0.5 s doubling, jitter 0 (random 0.5): the fifth retry waits 8 s.
    expect(timers.ms).toBe(8_000);
    signer.failWith = undefined;
    clock.t += timers.ms;
    await tick(s);
    expect(s.current).toBeDefined();
    expect(timers.pending).toBe(1);
  });

  test('attests at start, then renews when the wall clock passes the renewal point, with no timer firing', async () => {
    const s = makeSource();
    s.start();
    await s.firstSvid();
    expect(signer.calls).toEqual(['attest:join_token:tok-1']);
    const first = installed[0]!;
    expect(first.id.toString()).toBe(ID);
    expect(s.nextRenewalMs).toBe(first.notBeforeMs + (first.notAfterMs - first.notBeforeMs) / 2);

    clock.t += 5_000; // before the renewal point (12.5 s after NotBefore)
    await tick(s);
    expect(signer.calls).toHaveLength(1);

    // The host "slept" well past the renewal point: nothing fired meanwhile; the next tick sees the wall clock.
    clock.t = s.nextRenewalMs! + 1;
    await tick(s);
    expect(signer.calls).toEqual(['attest:join_token:tok-1', `renew:${first.serial}`]);
    expect(installed).toHaveLength(2);
    expect(installed[1]!.serial).not.toBe(first.serial);
    expect(installed[1]!.key).not.toBe(first.key);
    expect(events.map((e) => `${e.kind}:${e.result}`)).toEqual(['attest:success', 'renew:success']);
  });

  test('the control plane away: backs off, stays ready until the last 10 %, then reports why; resumes by itself', async () => {
    const s = makeSource();
    s.start();
    await s.firstSvid();
    const svid = installed[0]!;
    signer.failWith = new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE: connect ECONNREFUSED');
    clock.t = s.nextRenewalMs!;
    await tick(s);
    expect(s.consecutiveFailures).toBe(1);
    expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'failure' });
    const calls = signer.calls.length;
    await tick(s); // still inside the backoff window: no new attempt
    expect(signer.calls.length).toBe(calls);
    expect(s.readiness()).toEqual({ ready: true });

    // Keep failing until the last 10 % of the lifetime.
    const lastTenth = svid.notAfterMs - (svid.notAfterMs - svid.notBeforeMs) / 10;
    while (clock.t < lastTenth) {
      clock.t += 1_000;
      await tick(s);
    }
    const r = s.readiness();
    expect(r.ready).toBe(false);
    expect(!r.ready && r.reason).toBe('svid in last 10% of lifetime and renewal failing: TESSERA_ERR_IDENTITY_SIGN_FAILED: UNAVAILABLE: connect ECONNREFUSED');

    signer.failWith = undefined;
    for (let i = 0; i < 60 && installed.length < 2; i++) {
      clock.t += 500;
      await tick(s);
    }
    expect(installed).toHaveLength(2);
    expect(s.readiness()).toEqual({ ready: true });
    expect(s.consecutiveFailures).toBe(0);
  });

  test('expired with a spent inline join token: not ready with a clear reason, no attempt', async () => {
    const s = makeSource();
    s.start();
    await s.firstSvid();
    signer.failWith = new Error('down');
    clock.t = installed[0]!.notAfterMs + 1;
    const before = signer.calls.length;
    await tick(s);
    expect(signer.calls.length).toBe(before);
    const r = s.readiness();
    expect(r.ready).toBe(false);
    // Exactly, as the runbook (docs/runbooks/expired-certs.md) quotes it: "svid expired" once (audit 61d).
    expect(!r.ready && r.reason).toBe('svid expired: the join token is single-use: give the proxy a new join token (joinTokenFile) or restart it with one');
  });

  /** A source whose evidence is a Kubernetes token file ("k8s-token-1"), started with its first SVID; the dir goes after. */
  async function withTokenFileSource(fn: (s: ReturnType<typeof makeSource>, file: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-test-'));
    try {
      const file = join(dir, 'token');
      await writeFile(file, 'k8s-token-1\n');
      const s = makeSource(evidenceProvider({ kubernetesTokenFile: file }));
      s.start();
      await s.firstSvid();
      await fn(s, file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test('expired with a token file: re-attests with the file read afresh', async () => {
    await withTokenFileSource(async (s, file) => {
      await writeFile(file, 'k8s-token-2\n');
      clock.t = installed[0]!.notAfterMs + 10;
      await tick(s);
      expect(signer.calls).toEqual(['attest:kubernetes_token:k8s-token-1', 'attest:kubernetes_token:k8s-token-2']);
      expect(events.at(-1)).toMatchObject({ kind: 'reattest', result: 'success' });
      expect(s.readiness()).toEqual({ ready: true });
    });
  });

  test('a renewal refused because the serial is banned: attests afresh at the next retry, not at expiry', async () => {
    await withTokenFileSource(async (s) => {
      const first = installed[0]!;
      const renew = signer.renew.bind(signer);
      signer.renew = async (csr, current) => {
        await renew(csr, current).catch(() => undefined);
        throw new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'PERMISSION_DENIED TESSERA_ERR_REVOCATION_SERIAL_BANNED: banned', { controlPlaneCode: 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' });
      };
      clock.t = first.notBeforeMs + (first.notAfterMs - first.notBeforeMs) * 0.6; // past the renewal point
      await tick(s);
      expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'failure' });
      // Every peer refuses a banned serial: not ready, though the SVID has life left (audit 53b F5).
      expect(s.readiness()).toEqual({ ready: false, reason: expect.stringMatching(/^svid revoked by the control plane: .*SERIAL_BANNED/) });
      // The ban it was refused for, which the Workload API's JWT calls follow (audit 54b F6).
      expect(s.revokedBy).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
      clock.t += 3_000; // past the retry backoff (a quarter of the life left at most), before expiry
      await tick(s);
      expect(signer.calls).toEqual(['attest:kubernetes_token:k8s-token-1', `renew:${first.serial}`, 'attest:kubernetes_token:k8s-token-1']);
      expect(events.at(-1)).toMatchObject({ kind: 'reattest', result: 'success' });
      expect(s.readiness()).toEqual({ ready: true });
      expect(installed.at(-1)!.serial).not.toBe(first.serial);
      expect(s.revokedBy).toBeUndefined();
      expect(clock.t).toBeLessThan(first.notAfterMs);
    });
  });

  // Audit 59b F5: the re-attestation's own failure (a spent join token) took the ban's place in /ready's reason.
  test('a serial ban whose re-attestation fails too: /ready still names the ban', async () => {
    await withTokenFileSource(async (s) => {
      const first = installed[0]!;
      signer.renew = async () => {
        throw new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'PERMISSION_DENIED TESSERA_ERR_REVOCATION_SERIAL_BANNED: banned', { controlPlaneCode: 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' });
      };
      signer.attest = async () => {
        throw new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAUTHENTICATED TESSERA_ERR_ATTESTATION_TOKEN_USED: spent', { controlPlaneCode: 'TESSERA_ERR_ATTESTATION_TOKEN_USED' });
      };
      clock.t = first.notBeforeMs + (first.notAfterMs - first.notBeforeMs) * 0.6;
      await tick(s);
      clock.t += 3_000;
      await tick(s);
      expect(events.some((e) => e.error?.includes('TOKEN_USED'))).toBe(true);
      expect(s.readiness()).toEqual({ ready: false, reason: expect.stringMatching(/^svid revoked by the control plane: .*SERIAL_BANNED/) });
    });
  });

  test('a renewal refused because the ID is banned: not ready at once, and stays so while re-attestation is refused too', async () => {
    const s = makeSource();
    s.start();
    await s.firstSvid();
    const first = installed[0]!;
    signer.renew = async () => {
      throw new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'PERMISSION_DENIED TESSERA_ERR_REVOCATION_ID_BANNED: banned', { controlPlaneCode: 'TESSERA_ERR_REVOCATION_ID_BANNED' });
    };
    expect(s.readiness()).toEqual({ ready: true });
    clock.t = first.notBeforeMs + (first.notAfterMs - first.notBeforeMs) * 0.6;
    await tick(s);
    expect(s.readiness()).toMatchObject({ ready: false, reason: expect.stringContaining('svid revoked by the control plane') });
    clock.t += 3_000;
    await tick(s);
    expect(s.readiness()).toMatchObject({ ready: false, reason: expect.stringContaining('svid revoked by the control plane') });
    expect(s.revokedBy).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
  });

  test('a bad answer is refused and counted; the old SVID stays', async () => {
    const s = makeSource();
    s.start();
    await s.firstSvid();
    const first = s.current!;
    signer.wrongKey = true;
    clock.t = s.nextRenewalMs!;
    await tick(s);
    expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'refused' });
    expect(s.lastError).toMatch(/TESSERA_ERR_IDENTITY_BAD_RESPONSE: the SVID does not carry the public key/);
    expect(s.current).toBe(first);

    signer.wrongKey = false;
    signer.id = 'spiffe://example.org/ns/default/sa/other';
    clock.t = s.nextRenewalMs!;
    await tick(s);
    expect(s.lastError).toMatch(/renewal changed the SPIFFE ID/);
    expect(s.current).toBe(first);
    expect(installed).toHaveLength(1);
  });

  test('an SVID the identity store refuses is counted as refused', async () => {
    const s = makeSource(undefined, () => {
      throw new TesseraError('TESSERA_ERR_IDENTITY_BAD_RESPONSE', 'store said no');
    });
    s.start();
    await s.tick();
    expect(s.current).toBeUndefined();
    expect(events).toEqual([{ kind: 'attest', result: 'refused', error: 'TESSERA_ERR_IDENTITY_BAD_RESPONSE: store said no', code: 'TESSERA_ERR_IDENTITY_BAD_RESPONSE' }]);
    expect(s.readiness()).toEqual({ ready: false, reason: 'no svid yet: TESSERA_ERR_IDENTITY_BAD_RESPONSE: store said no' });
    s.stop();
    expect(timers.fn).toBeUndefined();
  });

  test('a rotation verifies the SVID chain once: in the identity store, under the bundles it installs', async () => {
    const store = new IdentityStore(clock);
    const watched = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
    const bootstrap = watched;
    const s = makeSource(undefined, (svid) => installIdentity(store, svid, watched, bootstrap));
    // Every chain verification checks each link's signature: leaf → intermediate → root is two calls.
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      s.start();
      await s.firstSvid();
      expect(store.current?.serial).toBe(s.current?.serial);
      expect(verify).toHaveBeenCalledTimes(2);
      verify.mockClear();
      clock.t = s.nextRenewalMs! + 1;
      await tick(s);
      expect(events.map((e) => `${e.kind}:${e.result}`)).toEqual(['attest:success', 'renew:success']);
      expect(verify).toHaveBeenCalledTimes(2);
    } finally {
      verify.mockRestore();
    }
  });

  test('an answer whose chain does not verify is refused by the identity store; the old SVID stays', async () => {
    const store = new IdentityStore(clock);
    const s = makeSource(undefined, (svid) => installIdentity(store, svid, undefined, new TrustBundleSet([])));
    s.start();
    await s.firstSvid();
    const first = store.current!.serial;
    const other = await TestCa.create({ nowMs: T0 });
    signer.ca = other; // signs with another CA but answers with the old CA's bundle below
    signer.bundleFrom = ca;
    clock.t = s.nextRenewalMs! + 1;
    await tick(s);
    expect(events.at(-1)).toMatchObject({ kind: 'renew', result: 'refused' });
    expect(s.lastError).toMatch(/TESSERA_ERR_IDENTITY_INVALID: the SVID does not verify/);
    expect(store.current!.serial).toBe(first);
  });

  test('an answer not valid yet by this clock (skew past the backdate) is held and installed once valid; the spent token is not asked again', async () => {
    const store = new IdentityStore(clock);
    const bundles = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
    const s = makeSource(undefined, (svid) => installIdentity(store, svid, bundles, bundles));
    // This proxy's clock is 15 s behind the control plane's, 10 s past its 5 s backdate: NotAfter is its now + 20 s.
    signer.notBeforeOffsetMs = 10_000;
    signer.ttlMs = 35_000;
    s.start();
    await s.tick();
    expect(store.current).toBeUndefined();
    expect(events).toEqual([{ kind: 'attest', result: 'refused', error: expect.stringMatching(/not_yet_valid.*held, installed at 2030-01-01T00:00:10\.000Z/), code: 'TESSERA_ERR_IDENTITY_INVALID' }]);
    expect(s.readiness()).toMatchObject({ ready: false, reason: expect.stringContaining('held, installed at') });
    // Looks before then ask nothing (the inline token is spent: asking again would be TOKEN_USED).
    clock.t = T0 + 5_000;
    await tick(s);
    expect(signer.calls).toEqual(['attest:join_token:tok-1']);
    expect(store.current).toBeUndefined();
    clock.t = T0 + 10_000;
    await tick(s);
    expect(signer.calls).toHaveLength(1);
    expect(store.current?.serial).toBe(s.current?.serial);
    expect(events.at(-1)).toMatchObject({ kind: 'attest', result: 'success', serial: s.current!.serial });
    expect(s.readiness()).toEqual({ ready: true });
    expect(s.consecutiveFailures).toBe(0);
  });
});
