// The PKCS#10 requests the proxy writes with the DER writer are read alike by three independent readers: the CA's
// own reader (what decides issuance), @peculiar/x509 (the CA tooling) and `openssl req -verify` — for both key
// algorithms, with and without SANs, with a subject and with CA rights asked for; bad input is refused at once.
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { createCsr } from '../../../../common/pki/csr.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { generateKeyPair, type KeyAlgorithm } from '../../../../common/pki/keys.js';
import { readCsr } from '../../../../control-plane/src/issuance/csr-reader.js';

const ID = 'spiffe://example.org/ns/default/sa/web';

/** `openssl req -verify -text`: its text, having checked that openssl said the self-signature verifies. */
function openssl(der: Buffer): string {
  const r = spawnSync('openssl', ['req', '-inform', 'DER', '-verify', '-noout', '-text'], { input: der });
  const said = `${r.stdout}${r.stderr}`;
  // OpenSSL 3.0 exits 0 on a bad self-signature and says so only in words.
  if (r.status !== 0 || !/verify OK/.test(said) || /verify failure/.test(said)) throw new Error(`openssl refused the request: ${said}`);
  return r.stdout.toString();
}

describe.each<KeyAlgorithm>(['ec-p256', 'rsa-2048'])('createCsr with %s', (algorithm) => {
  const pair = generateKeyPair(algorithm);

  test('an SVID request: URI SAN, default subject, self-signature valid for all three readers', async () => {
    const der = await createCsr(pair, { uriSans: [ID] });
    const ca = readCsr(der);
    expect(ca.algorithm).toBe(algorithm);
    expect(ca.sans).toEqual([{ type: 'uri', value: ID }]);
    expect(ca.requestsCa).toBe(false);
    expect(ca.spkiDer.equals(pair.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    const lib = await parseCsr(der);
    expect(lib.uriSans).toEqual([ID]);
    expect(lib.requestsCa).toBe(false);
    const text = openssl(der);
    expect(text).toMatch(/Subject: O\s*=\s*Tessera/);
    expect(text).toContain(`URI:${ID}`);
    expect(text).toMatch(algorithm === 'ec-p256' ? /Signature Algorithm: ecdsa-with-SHA256/ : /Signature Algorithm: sha256WithRSAEncryption/);
  });

  test('no SANs at all (a renewal): an empty attribute set, still valid', async () => {
    const der = await createCsr(pair, {});
    expect(readCsr(der).sans).toEqual([]);
    expect((await parseCsr(der)).sans).toEqual([]);
    expect(openssl(der)).toMatch(/Attributes:\s*\n\s*\(none\)|Attributes:\s*\n\s*a0:00/);
  });

  test('a CA request (offline intermediate): subject in order, URI and DNS SANs, critical basicConstraints cA', async () => {
    const der = await createCsr(pair, { subject: 'CN=Tessera intermediate example.org 1700000000000, O=Tessera', uriSans: ['spiffe://example.org'], dnsSans: ['ca.example.org'], requestCa: true });
    const ca = readCsr(der);
    expect(ca.requestsCa).toBe(true);
    expect(ca.sans).toEqual([
      { type: 'uri', value: 'spiffe://example.org' },
      { type: 'dns', value: 'ca.example.org' },
    ]);
    expect((await parseCsr(der)).requestsCa).toBe(true);
    const text = openssl(der);
    expect(text).toMatch(/Subject: CN\s*=\s*Tessera intermediate example.org 1700000000000, O\s*=\s*Tessera/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s*\n\s*CA:TRUE/);
    expect(text).toContain('DNS:ca.example.org');
  });
});

describe('createCsr refuses what it cannot write faithfully', () => {
  const pair = generateKeyPair();
  test.each(['X=1', 'O', 'CN=', 'O=Tessera, =x', 'E=a@b'])('subject %j', async (subject) => {
    await expect(createCsr(pair, { subject })).rejects.toThrow(/distinguished name/);
  });
  test('a SAN that is not ASCII (IA5String)', async () => {
    await expect(createCsr(pair, { uriSans: ['spiffe://exämple.org/x'] })).rejects.toThrow(/IA5/);
  });
  test('a request whose signed part was altered fails every reader', async () => {
    const der = await createCsr(pair, { uriSans: [ID] });
    const at = der.indexOf(Buffer.from('web'));
    der[at] = 'x'.charCodeAt(0);
    expect(() => readCsr(der)).toThrow();
    await expect(parseCsr(der)).rejects.toThrow();
    expect(() => openssl(der)).toThrow();
  });
});
