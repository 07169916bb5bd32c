// Federation against real HTTPS bundle endpoints on loopback: an https_spiffe endpoint is accepted only when it
// presents the configured SPIFFE ID under the bundle we hold for it; a document for another trust domain, with no
// X.509 authority, or malformed is refused by code while the last good bundle stays; a rotation is taken up and
// reported once; https_web checks the server by the configured CA and host name.
import { type KeyObject, generateKeyPairSync, generatePrimeSync } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { rsaKeyWeakness } from '../../../../common/pki/rsa-key-strength.js';
import { spiffeBundleDocument } from '../../../../common/spiffe/spiffe-bundle.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { acceptFederatedBundle } from '../../../../control-plane/src/federation/federated-bundle.js';
import { type FederatedDomain, Federation, type LastGoodStore, nextRefreshMs } from '../../../../control-plane/src/federation/federation.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { TestCa } from '../../../helpers/test-ca.js';

const B = TrustDomain.parse('b.test');
const ENDPOINT_ID = 'spiffe://b.test/tessera/control-plane';
const docOf = (cas: TestCa[], hint = 300) => JSON.stringify(spiffeBundleDocument({ x509Authorities: cas.map((c) => c.root.cert), jwtAuthorities: [], sequence: 1, refreshHintSeconds: hint }));
const silent = { info: () => {}, warn: () => {}, error: () => {} };
/** The RSA key rules in this thread (the control plane's run on a worker thread: issuance/rsa-key-worker.ts). */
const inThread = async (key: KeyObject) => rsaKeyWeakness(key);
const accept = (text: string, td = B) => acceptFederatedBundle(text, td, Date.now(), inThread);

let a: TestCa;
let b: TestCa;
let b2: TestCa;
let c: TestCa;
let served = '';
const servers: Server[] = [];

async function endpoint(ca: TestCa, id: string, opts: { dnsSans?: string[] } = {}): Promise<number> {
  const svid = await ca.mintSvid(id, opts.dnsSans ? { dnsSans: opts.dnsSans } : {});
  const s = createServer({ cert: svid.chainPem, key: svid.keyPem }, (_req, res) => res.end(served));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

async function federation(domain: Partial<FederatedDomain> & { bundleEndpointUrl: string }, store?: LastGoodStore) {
  const events = { changes: 0, accepted: 0, refused: [] as string[] };
  const warnings: string[] = [];
  const d: FederatedDomain = { trustDomain: B, profile: 'https_spiffe', endpointSpiffeId: SpiffeId.parse(ENDPOINT_ID), ...domain };
  const own = (await accept(docOf([a]), TrustDomain.parse('a.test'))).bundle;
  const f = new Federation({
    domains: [d],
    ownBundle: () => own,
    clock: systemClock,
    timers: realTimers,
    refreshMinMs: 1_000,
    refreshMaxMs: 60_000,
    fetchTimeoutMs: 5_000,
    log: { ...silent, warn: (o) => warnings.push(String(o['err'])) },
    ...(store ? { store } : {}),
    onChange: () => events.changes++,
    onAccepted: () => events.accepted++,
    onRefused: (_td, code) => events.refused.push(code),
    keyWeakness: inThread,
  });
  await f.load();
  return { f, d, events, warnings };
}

beforeAll(async () => {
  [a, b, b2, c] = await Promise.all([TestCa.create({ trustDomain: 'a.test' }), TestCa.create({ trustDomain: 'b.test' }), TestCa.create({ trustDomain: 'b.test', rootName: 'CN=Test Root b.test 2' }), TestCa.create({ trustDomain: 'c.test' })]);
});

afterAll(() => {
  for (const s of servers) s.close();
});

describe('nextRefreshMs', () => {
  test('the hint, clamped to [min, max]; the maximum without a hint', () => {
    expect(nextRefreshMs(300, 1_000, 60_000)).toBe(60_000);
    expect(nextRefreshMs(0, 1_000, 60_000)).toBe(1_000);
    expect(nextRefreshMs(5, 1_000, 60_000)).toBe(5_000);
    expect(nextRefreshMs(undefined, 1_000, 60_000)).toBe(60_000);
  });
});

describe('acceptFederatedBundle', () => {
  test('refuses another domain, no x509 key, a non-CA key, an expired bundle and malformed JSON, by code', async () => {
    const leaf = (await b.mintSvid('spiffe://b.test/w')).leaf;
    expect((await accept(docOf([b, b2]))).bundle.authorities).toHaveLength(2);
    const code = async (text: string) => {
      try {
        await accept(text);
        return 'accepted';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(await code(docOf([c]))).toBe('TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN');
    expect(await code(docOf([b, c]))).toBe('TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN');
    expect(await code(JSON.stringify({ keys: [] }))).toBe('TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES');
    expect(await code(JSON.stringify(spiffeBundleDocument({ x509Authorities: [b.intermediate.cert], jwtAuthorities: [], sequence: 1, refreshHintSeconds: 1 })))).toBe('accepted');
    expect(await code(JSON.stringify(spiffeBundleDocument({ x509Authorities: [leaf], jwtAuthorities: [], sequence: 1, refreshHintSeconds: 1 })))).toBe('TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES');
    const old = await TestCa.create({ trustDomain: 'b.test', nowMs: Date.now() - 48 * 3_600_000 });
    expect(await code(docOf([old]))).toBe('TESSERA_ERR_FEDERATION_BUNDLE_EXPIRED');
    expect(await code(docOf([old, b]))).toBe('accepted'); // one live authority is enough
    expect(await code('{"keys": [')).toBe('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED');
    // A peer that adds what the spec has consumers skip (an Ed25519 key, an entry without x5c) is still followed.
    const withSkipped = JSON.parse(docOf([b])) as { keys: object[] };
    withSkipped.keys.push({ ...(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as object), kid: 'ed', use: 'jwt-svid' }, { kty: 'EC', crv: 'P-256', use: 'x509-svid' });
    const taken = await accept(JSON.stringify(withSkipped));
    expect(taken.bundle.fingerprints()).toHaveLength(1);
    expect(taken.ignored).toHaveLength(2);
  });
});

describe('Federation.refresh against an https_spiffe endpoint', () => {
  test('accepts, keeps the last good bundle through refusals, takes up a rotation and reports each change once', async () => {
    const port = await endpoint(b, ENDPOINT_ID);
    const { f: g, d, events } = await federation({ bundleEndpointUrl: `https://127.0.0.1:${port}/`, bootstrap: b.bundlePem() });
    // The bootstrap bundle (what authenticates the endpoint) is held before any fetch.
    expect(g.bundles().map((x) => x.trustDomain.name)).toEqual(['b.test']);
    served = docOf([b], 5);
    expect(await g.refresh(d)).toBe(5_000);
    expect(events).toEqual({ changes: 0, accepted: 1, refused: [] }); // the same keys as the bootstrap: nothing to push

    for (const [doc, want] of [
      [docOf([c]), 'TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN'],
      [JSON.stringify({ keys: [] }), 'TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES'],
      ['<html>', 'TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED'],
    ] as const) {
      served = doc;
      expect(await g.refresh(d)).toBe(1_000); // retried after the minimum
      expect(events.refused.at(-1)).toBe(want);
      expect(g.bundles()[0]!.fingerprints()).toEqual((await accept(docOf([b]))).bundle.fingerprints());
    }
    expect(events.changes).toBe(0);

    served = docOf([b, b2]);
    await g.refresh(d);
    expect(events.changes).toBe(1);
    await g.refresh(d);
    expect(events.changes).toBe(1);
    expect(g.bundles()[0]!.authorities).toHaveLength(2);
  });

  test('a document with a lower spiffe_sequence (an old one replayed) is refused; the newer bundle stays', async () => {
    const port = await endpoint(b, ENDPOINT_ID);
    const { f: g, d, events } = await federation({ bundleEndpointUrl: `https://127.0.0.1:${port}/`, bootstrap: b.bundlePem() });
    const doc = (cas: TestCa[], sequence: number) => JSON.stringify(spiffeBundleDocument({ x509Authorities: cas.map((x) => x.root.cert), jwtAuthorities: [], sequence, refreshHintSeconds: 300 }));
    // Sequence 7 adds b2 (the endpoint's own CA, b, stays so it can still prove its ID).
    served = doc([b, b2], 7);
    await g.refresh(d);
    expect(g.bundles()[0]!.authorities).toHaveLength(2);
    served = doc([b], 1);
    await g.refresh(d);
    expect(events.refused.at(-1)).toBe('TESSERA_ERR_FEDERATION_BUNDLE_ROLLBACK');
    expect(g.bundles()[0]!.authorities).toHaveLength(2);
    // Nor a document without a sequence: it would reset the guard.
    served = JSON.stringify({ keys: JSON.parse(doc([b], 1)).keys });
    await g.refresh(d);
    expect(events.refused.at(-1)).toBe('TESSERA_ERR_FEDERATION_BUNDLE_ROLLBACK');
    expect(g.bundles()[0]!.authorities).toHaveLength(2);
    // The same sequence or a higher one is taken.
    served = doc([b], 8);
    await g.refresh(d);
    expect(g.bundles()[0]!.authorities.map((x) => x.fingerprint256)).toEqual([b.root.cert.fingerprint256]);
  });

  test('a weak key in a fetched document (an X.509 authority or a JWT key) is refused by code', async () => {
    const port = await endpoint(b, ENDPOINT_ID);
    const { f: g, d, events } = await federation({ bundleEndpointUrl: `https://127.0.0.1:${port}/`, bootstrap: b.bundlePem() });
    const rsa512 = generateKeyPairSync('rsa', { modulusLength: 512 }).publicKey.export({ format: 'jwk' });
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'jwk' });
    const withJwt = (jwk: object) => JSON.stringify({ ...JSON.parse(docOf([b])), keys: [...JSON.parse(docOf([b])).keys, { ...jwk, use: 'jwt-svid', kid: 'weak' }] });
    for (const weak of [rsa512, k1]) {
      served = withJwt(weak);
      await g.refresh(d);
      expect(events.refused.at(-1)).toBe('TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY');
      expect(g.jwtAuthorities().get('b.test') ?? []).toEqual([]);
    }
    // Size is not strength: RSA-2048 with e = 1 (a signature forged without the key) or e = 3, or a prime modulus.
    const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
    const prime = Buffer.from(generatePrimeSync(2048));
    for (const [name, jwk] of [
      ['e = 1', { kty: 'RSA', n: n.toString('base64url'), e: 'AQ' }],
      ['e = 3', { kty: 'RSA', n: n.toString('base64url'), e: 'Aw' }],
      ['an even modulus', { kty: 'RSA', n: Buffer.concat([n.subarray(0, -1), Buffer.from([n.at(-1)! & 0xfe])]).toString('base64url'), e: 'AQAB' }],
      ['a prime modulus (the private key computed from the public one)', { kty: 'RSA', n: prime.toString('base64url'), e: 'AQAB' }],
    ] as const) {
      served = withJwt(jwk);
      await g.refresh(d);
      expect(events.refused.at(-1), name).toBe('TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY');
    }
    // A strong JWT key is taken.
    served = withJwt(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'jwk' }));
    await g.refresh(d);
    expect(g.jwtAuthorities().get('b.test')!.map((k) => k.keyId)).toEqual(['weak']);
  });

  test('a federated domain equal to our own is refused at construction (the config refuses it too)', async () => {
    await expect(federation({ bundleEndpointUrl: 'https://127.0.0.1:1/', trustDomain: TrustDomain.parse('a.test') })).rejects.toThrowError(/own trust domain/);
  });

  test('the last good document is kept in the store and preferred to the bootstrap bundle at the next start', async () => {
    const port = await endpoint(b, ENDPOINT_ID);
    const kept = new Map<string, string>();
    const store: LastGoodStore = { load: (td) => kept.get(td), save: (td, text) => kept.set(td, text) };
    const url = `https://127.0.0.1:${port}/`;
    const first = await federation({ bundleEndpointUrl: url, bootstrap: b.bundlePem() }, store);
    served = docOf([b, b2]);
    await first.f.refresh(first.d);
    expect(kept.get('b.test')).toBe(served);
    served = docOf([c]); // refused: nothing kept
    await first.f.refresh(first.d);
    expect(kept.get('b.test')).toBe(docOf([b, b2]));
    // A restart: the kept bundle (two roots), not the bootstrap (one).
    expect((await federation({ bundleEndpointUrl: url, bootstrap: b.bundlePem() }, store)).f.bundles()[0]!.authorities).toHaveLength(2);
    // A kept document that no longer passes (here: another domain's) is ignored, with a warning.
    kept.set('b.test', docOf([c]));
    const again = await federation({ bundleEndpointUrl: url, bootstrap: b.bundlePem() }, store);
    expect(again.f.bundles()[0]!.authorities).toHaveLength(1);
    expect(again.warnings.join()).toMatch(/TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN/);
  });

  test("a bootstrap bundle of another domain stops the start (a config error, not a silent trust)", async () => {
    await expect(federation({ bundleEndpointUrl: 'https://127.0.0.1:1/', bootstrap: docOf([c]) })).rejects.toThrow(expect.objectContaining({ code: 'TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN' }));
    await expect(federation({ bundleEndpointUrl: 'https://127.0.0.1:1/', bootstrap: c.bundlePem() })).rejects.toThrow(expect.objectContaining({ code: 'TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN' }));
    await expect(federation({ bundleEndpointUrl: 'https://127.0.0.1:1/', bootstrap: 'not a bundle' })).rejects.toThrow(expect.objectContaining({ code: 'TESSERA_ERR_PEM_MALFORMED' }));
  });

  test('an endpoint presenting another ID, or an ID it cannot prove under the held bundle, is refused', async () => {
    const wrongId = await endpoint(b, 'spiffe://b.test/not-the-endpoint');
    const forged = await endpoint(c, ENDPOINT_ID.replace('b.test', 'c.test'));
    const foreignCa = await endpoint(await TestCa.create({ trustDomain: 'b.test' }), ENDPOINT_ID);
    served = docOf([b]);
    for (const [port, why] of [
      [wrongId, /the endpoint is not spiffe:\/\/b\.test\/tessera\/control-plane \(TESSERA_ERR_SVID_ID_MISMATCH\)/],
      [forged, /certificate/i],
      [foreignCa, /certificate/i],
    ] as const) {
      const { f: g, d, events, warnings } = await federation({ bundleEndpointUrl: `https://127.0.0.1:${port}/`, bootstrap: b.bundlePem() });
      await g.refresh(d);
      expect(events, `port ${port}`).toEqual({ changes: 0, accepted: 0, refused: ['TESSERA_ERR_FEDERATION_FETCH_FAILED'] });
      expect(warnings.join('\n')).toMatch(why);
    }
  });
});

describe('Federation.refresh against an https_web endpoint', () => {
  test('checks the server by the configured CA and host name', async () => {
    const port = await endpoint(c, 'spiffe://c.test/web', { dnsSans: ['localhost'] });
    served = docOf([b]);
    const web = (url: string, caPem?: string) => federation({ bundleEndpointUrl: url, profile: 'https_web', ...(caPem ? { caPem } : {}) });
    const ok = await web(`https://localhost:${port}/`, c.bundlePem());
    await ok.f.refresh(ok.d);
    expect(ok.events).toEqual({ changes: 1, accepted: 1, refused: [] });
    expect(ok.f.bundles().map((x) => x.trustDomain.name)).toEqual(['b.test']);
    const untrusted = await web(`https://localhost:${port}/`);
    await untrusted.f.refresh(untrusted.d);
    expect(untrusted.events.refused).toEqual(['TESSERA_ERR_FEDERATION_FETCH_FAILED']);
    const wrongHost = await web(`https://127.0.0.1:${port}/`, c.bundlePem());
    await wrongHost.f.refresh(wrongHost.d);
    expect(wrongHost.events.refused).toEqual(['TESSERA_ERR_FEDERATION_FETCH_FAILED']);
  });
});
