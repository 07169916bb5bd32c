// A stream open verifies the caller's SVID chain once: the same chain opening again against the same bundle, inside
// its validity, reuses the verdict (left from audit 40a: 100 IDs × 10 Watch streams spent ~1.5 s of event loop re-verifying).
// What can change the answer still does on the next open: a rotated bundle, the certificate's expiry, a ban.
import { expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { verifyX509Svid } from '../../../../common/spiffe/x509-svid.js';
import { authenticateStream } from '../../../../control-plane/src/api/stream-caller.js';
import { SvidAttestor } from '../../../../control-plane/src/attestation/svid-attestor.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { TestCa } from '../../../helpers/test-ca.js';

const START = Date.UTC(2026, 10, 28, 12, 0, 0);
const ID = 'spiffe://example.org/ns/default/sa/web';
const td = TrustDomain.parse('example.org');

async function harness() {
  const time = new FakeTime(START);
  const ca = await TestCa.create({ nowMs: START });
  let bundle = new TrustBundle(td, [ca.root.cert]);
  let verified = 0;
  const verify: typeof verifyX509Svid = (...a) => {
    verified++;
    return verifyX509Svid(...a);
  };
  const banned = new Set<string>();
  const refused: string[] = [];
  let chain: Buffer[] = [];
  const deps = {
    svids: new SvidAttestor(() => bundle, time, { verify }),
    peerChain: () => chain,
    admit: (id: string, serial: string) => {
      if (banned.has(id)) throw new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED');
      if (banned.has(serial)) throw new TesseraError('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    },
    onRefused: (code: string) => void refused.push(code),
  };
  const open = (certs: { raw: Buffer }[]) => {
    chain = certs.map((c) => c.raw);
    return authenticateStream({ getPeer: () => '127.0.0.1:1', emit: () => true }, deps);
  };
  return { time, ca, open, banned, refused, verified: () => verified, setBundle: (b: TrustBundle) => {
    bundle = b;
  } };
}

test('a second open with the same chain does not verify it again; another chain, or the same leaf sent with others, does', async () => {
  const h = await harness();
  const svid = await h.ca.mintSvid(ID);
  const first = h.open(svid.chain);
  expect(first?.spiffeId.toString()).toBe(ID);
  for (let i = 0; i < 9; i++) expect(h.open(svid.chain)?.serial).toBe(first?.serial);
  expect(h.verified()).toBe(1);
  // Same ID, another certificate: verified on its own.
  const other = await h.ca.mintSvid(ID);
  expect(h.open(other.chain)?.spiffeId.toString()).toBe(ID);
  expect(h.verified()).toBe(2);
  // The same leaf with another chain behind it is another chain.
  expect(h.open([...svid.chain, h.ca.root.cert])).toBeDefined();
  expect(h.verified()).toBe(3);
});

test('a cached chain whose authority was rotated out of the bundle is refused on its next open', async () => {
  const h = await harness();
  const svid = await h.ca.mintSvid(ID);
  expect(h.open(svid.chain)).toBeDefined();
  const next = await TestCa.create({ nowMs: START });
  // A new authority added beside the old one: verified again against the new anchors, still accepted.
  h.setBundle(new TrustBundle(td, [h.ca.root.cert, next.root.cert]));
  expect(h.open(svid.chain)).toBeDefined();
  expect(h.verified()).toBe(2);
  // The old one retired: refused although its verdict was cached.
  h.setBundle(new TrustBundle(td, [next.root.cert]));
  expect(h.open(svid.chain)).toBeUndefined();
  expect(h.refused).toEqual(['TESSERA_ERR_ATTESTATION_SVID_INVALID']);
  expect(h.verified()).toBe(3);
});

test('a cached chain is refused on its first open after its NotAfter', async () => {
  const h = await harness();
  const svid = await h.ca.mintSvid(ID, { notAfter: new Date(START + 60_000) });
  expect(h.open(svid.chain)).toBeDefined();
  h.time.set(START + 60_000);
  expect(h.open(svid.chain)).toBeDefined(); // NotAfter itself is still valid (RFC 5280)
  h.time.set(START + 60_001);
  expect(h.open(svid.chain)).toBeUndefined();
  expect(h.refused).toEqual(['TESSERA_ERR_ATTESTATION_SVID_INVALID']);
});

test('a banned ID or serial is refused although its chain verdict is cached', async () => {
  const h = await harness();
  const a = await h.ca.mintSvid(ID);
  const b = await h.ca.mintSvid('spiffe://example.org/ns/default/sa/api');
  const serial = h.open(a.chain)!.serial;
  expect(h.open(b.chain)).toBeDefined();
  h.banned.add(serial);
  h.banned.add('spiffe://example.org/ns/default/sa/api');
  expect(h.open(a.chain)).toBeUndefined();
  expect(h.open(b.chain)).toBeUndefined();
  expect(h.refused).toEqual(['TESSERA_ERR_REVOCATION_SERIAL_BANNED', 'TESSERA_ERR_REVOCATION_ID_BANNED']);
  expect(h.verified()).toBe(2);
  h.banned.clear();
  expect(h.open(a.chain)).toBeDefined();
});

test('verdicts are bounded: past the bound the least recently used chain is verified again', async () => {
  const time = new FakeTime(START);
  const ca = await TestCa.create({ nowMs: START });
  let verified = 0;
  const verify: typeof verifyX509Svid = (...a) => {
    verified++;
    return verifyX509Svid(...a);
  };
  const svids = new SvidAttestor(() => new TrustBundle(td, [ca.root.cert]), time, { verify, maxVerdicts: 2 });
  const chains = await Promise.all([1, 2, 3].map(async (i) => (await ca.mintSvid(`${ID}${i}`)).chain.map((c) => c.raw)));
  for (const c of [chains[0]!, chains[1]!, chains[0]!, chains[2]!]) svids.attest(c);
  expect(verified).toBe(3);
  svids.attest(chains[0]!); // used most recently before the third came: kept
  expect(verified).toBe(3);
  svids.attest(chains[1]!); // dropped for the third
  expect(verified).toBe(4);
});
