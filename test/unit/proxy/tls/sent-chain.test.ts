// The chain a TLS peer sent, as the proxies read it (proxy/src/tls/sent-chain.ts): the leaf with its issuers linked,
// from getPeerCertificate(true) only — Node 24's getPeerX509Certificate() leaks every certificate after the leaf
// (audit 51b F1) — an empty answer (no certificate) read as none, and a linked path past SENT_MAX refused.
import type { DetailedPeerCertificate } from 'node:tls';
import { describe, expect, test } from 'vitest';
import { SENT_MAX, peerChainHead, sentCertificates } from '../../../../proxy/src/tls/sent-chain.js';

/** `n` certificates, each linked to the next as its issuer; the last links to itself (a root, as Node links it). */
function linked(n: number): DetailedPeerCertificate {
  const certs = Array.from({ length: n }, (_, i) => ({ raw: Buffer.from([i]), fingerprint256: `FP:${i}` }) as unknown as { issuerCertificate: unknown });
  certs.forEach((c, i) => {
    c.issuerCertificate = certs[Math.min(i + 1, n - 1)];
  });
  return certs[0] as unknown as DetailedPeerCertificate;
}

describe('sentCertificates', () => {
  test('a linked path of SENT_MAX is read whole, leaf first, stopping at the self-linked root', () => {
    expect(sentCertificates(linked(SENT_MAX))?.map((c) => c.fingerprint256)).toEqual(Array.from({ length: SENT_MAX }, (_, i) => `FP:${i}`));
  });

  test('one past SENT_MAX is refused (null)', () => {
    expect(sentCertificates(linked(SENT_MAX + 1))).toBeNull();
  });

  test('no leaf: none', () => {
    expect(sentCertificates(undefined)).toEqual([]);
  });
});

describe('peerChainHead', () => {
  test("reads the chain with getPeerCertificate(true) and never Node's X509 reader", () => {
    const calls: unknown[] = [];
    const head = linked(2);
    const socket = {
      getPeerCertificate: (detailed: true) => {
        calls.push(detailed);
        return head;
      },
      getPeerX509Certificate: () => {
        throw new Error('getPeerX509Certificate leaks the sent chain');
      },
    };
    expect(peerChainHead(socket)).toBe(head);
    expect(calls).toEqual([true]);
  });

  test('the empty object Node answers without a certificate is none', () => {
    expect(peerChainHead({ getPeerCertificate: () => ({}) as DetailedPeerCertificate })).toBeUndefined();
  });
});
