// effectiveBundles: the watch is the truth; the SVID's own authority is never dropped while the watch lags.
import { describe, expect, test } from 'vitest';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { effectiveBundles } from '../../../../proxy/src/identity/bundle-merge.js';
import type { IssuedSvid } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import { TestCa } from '../../../helpers/test-ca.js';

async function issued(ca: TestCa): Promise<IssuedSvid> {
  const m = await ca.mintSvid('spiffe://example.org/ns/default/sa/web');
  return {
    id: SpiffeId.parse('spiffe://example.org/ns/default/sa/web'),
    chain: m.chain,
    key: m.key,
    bundle: TrustBundle.parse('example.org', ca.bundlePem()),
    notBeforeMs: m.leaf.validFromDate.getTime(),
    notAfterMs: m.leaf.validToDate.getTime(),
    issuedAtMs: Date.now(),
    serial: m.leaf.serialNumber,
  };
}

describe('effectiveBundles', () => {
  test('bootstraps from the SVID answer, then follows the watch', async () => {
    const oldCa = await TestCa.create({ rootName: 'CN=Old' });
    const newCa = await TestCa.create({ rootName: 'CN=New' });
    const svid = await issued(oldCa);
    const now = Date.now();
    expect(effectiveBundles(undefined, undefined, now)).toBeUndefined();
    expect(effectiveBundles(undefined, svid, now)!.get('example.org')!.fingerprints()).toEqual(svid.bundle.fingerprints());
    const both = new TrustBundleSet([new TrustBundle(svid.bundle.trustDomain, [oldCa.root.cert, newCa.root.cert])]);
    expect(effectiveBundles(both, svid, now)).toBe(both);
  });

  test('keeps the own SVID authority when the watch does not have it yet; other domains untouched', async () => {
    const oldCa = await TestCa.create({ rootName: 'CN=Old' });
    const newCa = await TestCa.create({ rootName: 'CN=New' });
    const partner = await TestCa.create({ trustDomain: 'partner.org' });
    const svid = await issued(newCa); // activated before the watch delivered the new authority
    const watched = new TrustBundleSet([TrustBundle.parse('example.org', oldCa.bundlePem()), TrustBundle.parse('partner.org', partner.bundlePem())]);
    const eff = effectiveBundles(watched, svid, Date.now())!;
    const want = [...watched.get('example.org')!.fingerprints(), ...svid.bundle.fingerprints()].sort();
    expect(eff.get('example.org')!.fingerprints().sort()).toEqual(want);
    expect(want).toHaveLength(2);
    expect(eff.get('partner.org')!.fingerprints()).toEqual(watched.get('partner.org')!.fingerprints());
  });
});
