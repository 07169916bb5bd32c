// effectiveBundles: the watch is the truth; the SVID's own authority is never dropped while the watch lags, told
// apart from a same-named authority by its key (a CA re-keyed under the same name).
import { describe, expect, test } from 'vitest';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet, fingerprintOf } from '../../../../common/spiffe/trust-bundle.js';
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
    expect(effectiveBundles(undefined, undefined)).toBeUndefined();
    expect(effectiveBundles(undefined, svid)!.get('example.org')!.fingerprints()).toEqual(svid.bundle.fingerprints());
    const both = new TrustBundleSet([new TrustBundle(svid.bundle.trustDomain, [oldCa.root.cert, newCa.root.cert])]);
    expect(effectiveBundles(both, svid)).toBe(both);
  });

  test('keeps the own SVID authority when the watch does not have it yet; other domains untouched', async () => {
    const oldCa = await TestCa.create({ rootName: 'CN=Old' });
    const newCa = await TestCa.create({ rootName: 'CN=New' });
    const partner = await TestCa.create({ trustDomain: 'partner.org' });
    const svid = await issued(newCa); // activated before the watch delivered the new authority
    const watched = new TrustBundleSet([TrustBundle.parse('example.org', oldCa.bundlePem()), TrustBundle.parse('partner.org', partner.bundlePem())]);
    const eff = effectiveBundles(watched, svid)!;
    const want = [...watched.get('example.org')!.fingerprints(), ...svid.bundle.fingerprints()].sort();
    expect(eff.get('example.org')!.fingerprints().sort()).toEqual(want);
    expect(want).toHaveLength(2);
    expect(eff.get('partner.org')!.fingerprints()).toEqual(watched.get('partner.org')!.fingerprints());
  });

  test('a re-keyed root of the same name in the watch is not taken for the SVID\'s own authority', async () => {
    const before = await TestCa.create({ rootName: 'CN=Same Root' });
    const rekeyed = await TestCa.create({ rootName: 'CN=Same Root' });
    const svid = await issued(rekeyed);
    const lagging = new TrustBundleSet([TrustBundle.parse('example.org', before.bundlePem())]);
    expect(effectiveBundles(lagging, svid)!.get('example.org')!.fingerprints().sort()).toEqual([before.root.cert, rekeyed.root.cert].map(fingerprintOf).sort());
    const current = new TrustBundleSet([TrustBundle.parse('example.org', rekeyed.bundlePem())]);
    expect(effectiveBundles(current, svid)).toBe(current);
  });
});
