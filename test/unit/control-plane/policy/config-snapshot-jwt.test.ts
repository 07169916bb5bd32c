// JWT-SVID keys in Config/Watch snapshots, through the wire types: published with their trust domain's bundle,
// part of the content key (a JWT key rotation alone triggers a send), parsed back by the proxy to the same keys.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import type { JwtAuthority } from '../../../../common/spiffe/spiffe-bundle.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { buildSnapshot } from '../../../../control-plane/src/policy/config-snapshot.js';
import { parseConfigSnapshot } from '../../../../proxy/src/identity/config-watch-client.js';
import { TestCa } from '../../../helpers/test-ca.js';

const API = SpiffeId.parse('spiffe://example.org/ns/default/sa/api');
const key = (keyId: string): JwtAuthority => ({ keyId, publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey });

describe('JWT keys in config snapshots', async () => {
  const ca = await TestCa.create();
  const bundle = TrustBundle.parse(ca.trustDomain, ca.bundlePem());
  const build = (jwt: JwtAuthority[]) =>
    buildSnapshot({ version: 3, bundles: [bundle], jwtAuthorities: new Map([[ca.trustDomain, jwt]]), policies: [], grants: [], denyList: { spiffeIds: [], serials: [] } }, API, 1_000);
  const k1 = key('k1');
  const k2 = key('k2');

  test('a key added (rotation) or changed under the same kid changes the content key; the same keys do not', () => {
    const one = build([k1]);
    expect(build([k1]).contentKey).toBe(one.contentKey);
    expect(build([k1, k2]).contentKey).not.toBe(one.contentKey);
    expect(build([{ keyId: 'k1', publicKey: k2.publicKey }]).contentKey).not.toBe(one.contentKey);
  });

  test('the proxy reads back the same keys for the trust domain', () => {
    const u = parseConfigSnapshot(build([k1, k2]).message as unknown as ConfigSnapshotMsg);
    const got = u.jwtBundles.get(ca.trustDomain)!;
    expect([...got.keys()]).toEqual(['k1', 'k2']);
    expect(got.get('k2')!.equals(k2.publicKey)).toBe(true);
  });
});
