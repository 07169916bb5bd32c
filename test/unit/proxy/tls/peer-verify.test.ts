// PeerVerifier: SVID checks of TLS peers with a cache per identity generation, and chains completed from
// remembered intermediates when a resumed session presents only the leaf.
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import type { DetailedPeerCertificate } from 'node:tls';
import { describe, expect, test } from 'vitest';
import type { IdentitySnapshot } from '../../../../proxy/src/identity/identity-snapshot.js';
import { PeerVerifier } from '../../../../proxy/src/tls/peer-verify.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';

/** Node's detailed peer certificate shape: raw DER, fingerprint and the issuer chain as sent. */
function peerCert(certs: MintedSvid['chain']): DetailedPeerCertificate {
  let next: DetailedPeerCertificate | undefined;
  for (let i = certs.length - 1; i >= 0; i--) {
    next = { raw: certs[i]!.raw, fingerprint256: certs[i]!.fingerprint256, issuerCertificate: next } as unknown as DetailedPeerCertificate;
  }
  return next!;
}

function snapshot(ca: TestCa, generation: number): IdentitySnapshot {
  return { generation, bundles: new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]) } as unknown as IdentitySnapshot;
}

describe('PeerVerifier', () => {
  test('a full chain verifies; the same peer resumed (leaf only) after an identity change still verifies', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const v = new PeerVerifier();
    const full = v.verify(peerCert(web.chain), snapshot(ca, 1), Date.now());
    expect(full.ok && full.idText).toBe(WEB);
    // Lower-case hex, as /certs, `tessera certs list` and the deny-list print serials (audit 34c: logs had upper case).
    expect(full.ok && full.serial).toBe(web.leaf.serialNumber.toLowerCase());
    const resumed = v.verify(peerCert([web.leaf]), snapshot(ca, 2), Date.now());
    expect(resumed.ok).toBe(true);
  });

  test('without a remembered intermediate a lone leaf is unknown_ca (nothing is trusted by accident)', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const r = new PeerVerifier().verify(peerCert([web.leaf]), snapshot(ca, 1), Date.now());
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe('unknown_ca');
  });

  test('a completed chain is still checked against the current bundle: a removed CA fails', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const other = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const v = new PeerVerifier();
    expect(v.verify(peerCert(web.chain), snapshot(ca, 1), Date.now()).ok).toBe(true);
    const r = v.verify(peerCert([web.leaf]), snapshot(other, 2), Date.now());
    expect(r.ok).toBe(false);
  });

  test('no certificate → no_client_cert; an expired cached peer is checked again', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    expect(new PeerVerifier().verify(undefined, snapshot(ca, 1), Date.now())).toMatchObject({ ok: false, reason: 'no_client_cert' });
    const web = await ca.mintSvid(WEB);
    const v = new PeerVerifier();
    expect(v.verify(peerCert(web.chain), snapshot(ca, 1), Date.now()).ok).toBe(true);
    const later = Date.now() + 2 * 3_600_000;
    expect(v.verify(peerCert(web.chain), snapshot(ca, 1), later)).toMatchObject({ ok: false, reason: 'expired' });
  });

  test('a cached peer is served only while its whole path is valid: an intermediate that expires before the leaf ends it', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB, { notAfter: new Date(Date.now() + 20 * 3_600_000) });
    const v = new PeerVerifier();
    const first = v.verify(peerCert(web.chain), snapshot(ca, 1), Date.now());
    expect(first).toMatchObject({ ok: true, notAfterMs: ca.intermediate.cert.validToDate.getTime() });
    // Past the intermediate's NotAfter, the leaf still valid: checked again (resumed or full), and refused.
    const later = ca.intermediate.cert.validToDate.getTime() + 1_000;
    expect(v.verify(peerCert([web.leaf]), snapshot(ca, 1), later)).toMatchObject({ ok: false, reason: 'expired' });
    expect(v.verify(peerCert(web.chain), snapshot(ca, 1), later)).toMatchObject({ ok: false, reason: 'expired' });
  });

  test('a cached peer is served only within its validity: a clock set back before NotBefore checks it again', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const v = new PeerVerifier();
    const first = v.verify(peerCert(web.chain), snapshot(ca, 1), Date.now());
    expect(first).toMatchObject({ ok: true, notBeforeMs: web.leaf.validFromDate.getTime() });
    const before = web.leaf.validFromDate.getTime() - 1_000;
    expect(v.verify(peerCert([web.leaf]), snapshot(ca, 1), before)).toMatchObject({ ok: false, reason: 'not_yet_valid' });
  });

  test('verifySocket: a known peer on a full handshake is served from the cache once its sent chain is on the verified path', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const intermediate = { raw: web.chain[1]!.raw, fingerprint256: web.chain[1]!.fingerprint256 };
    const socket = {
      getSession: () => undefined,
      isSessionReused: () => false,
      // getPeerCertificate(true): the sent chain hangs off issuerCertificate.
      getPeerCertificate: () => ({ raw: web.leaf.raw, fingerprint256: web.leaf.fingerprint256, issuerCertificate: intermediate }) as unknown as DetailedPeerCertificate,
    };
    const v = new PeerVerifier();
    const first = v.verifySocket(socket, snapshot(ca, 1), Date.now());
    expect(first.ok).toBe(true);
    expect(v.verifySocket(socket, snapshot(ca, 1), Date.now())).toBe(first); // the cached peer, not verified again
    const renewed = v.verifySocket(socket, snapshot(ca, 2), Date.now()); // a new generation checks again
    expect(renewed.ok).toBe(true);
    expect(renewed).not.toBe(first);
  });

  test('two CAs with the same intermediate name: a lone leaf is completed with the intermediate that signed it', async () => {
    const a = await TestCa.create({ trustDomain: 'example.org' });
    const b = await TestCa.create({ trustDomain: 'example.org', rootName: 'CN=Other root' });
    const both = { generation: 1, bundles: new TrustBundleSet([TrustBundle.parse('example.org', a.bundlePem() + b.bundlePem())]) } as unknown as IdentitySnapshot;
    const fromA = await a.mintSvid(WEB);
    const fromB = await b.mintSvid(WEB);
    const v = new PeerVerifier();
    expect(v.verify(peerCert(fromA.chain), both, Date.now()).ok).toBe(true);
    expect(v.verify(peerCert(fromB.chain), both, Date.now()).ok).toBe(true);
    const again = { ...both, generation: 2 } as IdentitySnapshot;
    expect(v.verify(peerCert([fromA.leaf]), again, Date.now()).ok).toBe(true);
    expect(v.verify(peerCert([fromB.leaf]), again, Date.now()).ok).toBe(true);
  });
});

describe('PeerVerifier and certificates a peer merely sent', () => {
  test('look-alike intermediates in refused chains never displace the real one used to complete resumed sessions', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const v = new PeerVerifier();
    expect(v.verify(peerCert(web.chain), snapshot(ca, 1), Date.now()).ok).toBe(true);
    // An attacker's CAs carrying the real intermediate's name, sent in chains that fail verification.
    for (let i = 0; i < 6; i++) {
      const fake = await TestCa.create({ trustDomain: 'example.org' });
      const junk = await fake.mintSvid('spiffe://example.org/ns/x/sa/attacker');
      expect(fake.intermediate.cert.subject).toBe(ca.intermediate.cert.subject);
      expect(v.verify(peerCert(junk.chain), snapshot(ca, 1), Date.now()).ok).toBe(false);
    }
    const resumed = v.verify(peerCert([web.leaf]), snapshot(ca, 2), Date.now());
    expect(resumed.ok).toBe(true);
  });
});
