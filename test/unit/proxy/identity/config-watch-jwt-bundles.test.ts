// The JWT keys in a Config/Watch snapshot: parsed into the JWT bundle of their trust domain; a malformed key or a
// repeated kid refuses the whole snapshot (nothing of it is applied).
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import { isTesseraError } from '../../../../common/errors.js';
import { parseConfigSnapshot } from '../../../../proxy/src/identity/config-watch-client.js';
import { TestCa } from '../../../helpers/test-ca.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = ec.publicKey.export({ type: 'spki', format: 'der' });

async function snapshot(jwt: { key_id: string; public_key: Buffer }[] | undefined): Promise<ConfigSnapshotMsg> {
  const ca = await TestCa.create();
  return {
    version: '3',
    bundles: [{ trust_domain: ca.trustDomain, x509_authorities: [ca.root.cert.raw], ...(jwt ? { jwt_authorities: jwt } : {}) }],
    policies: [],
    break_glass: [],
    generated_at_unix_ms: '0',
    deny_list: { spiffe_ids: [], serials: [] },
  };
}

describe('parseConfigSnapshot: JWT authorities', () => {
  test('keys become the JWT bundle of their trust domain; none (an older control plane) gives none', async () => {
    const u = parseConfigSnapshot(await snapshot([{ key_id: 'k1', public_key: spki }]));
    expect([...u.jwtBundles.keys()]).toEqual(['example.org']);
    expect(u.jwtBundles.get('example.org')!.get('k1')!.equals(ec.publicKey)).toBe(true);
    expect(parseConfigSnapshot(await snapshot(undefined)).jwtBundles.size).toBe(0);
  });

  test.each([
    ['garbage key', [{ key_id: 'k1', public_key: Buffer.from('nope') }]],
    ['empty key id', [{ key_id: '', public_key: spki }]],
    ['repeated key id', [{ key_id: 'k1', public_key: spki }, { key_id: 'k1', public_key: spki }]],
  ])('%s refuses the snapshot', async (_n, jwt) => {
    const msg = await snapshot(jwt);
    try {
      parseConfigSnapshot(msg);
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT')).toBe(true);
    }
  });
});
