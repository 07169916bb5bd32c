// The snapshots a primary sends its workers survive the IPC encoding whole: an identity decodes to the same
// chain, key and bundles (and is validated again), policies keep their version and grants, the deny-list its
// entries, the directory exactly its services; a damaged identity is refused with a coded error.
import { describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { PolicyHolder } from '../../../../proxy/src/authz/policy-holder.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { ServiceDirectory } from '../../../../proxy/src/routing/service-directory.js';
import { createDenyList } from '../../../../proxy/src/tls/deny-list.js';
import { applyDirectory, applyPolicies, decodeDenyList, decodeIdentity, encodeDenyList, encodeDirectory, encodeIdentity, encodePolicies } from '../../../../proxy/src/workers/worker-messages.js';
import { TestCa } from '../../../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;

/** Through JSON, as node's IPC channel carries it. */
const wire = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('identity', () => {
  test('decodes to a snapshot with the same SVID, key and bundles, under the worker’s own generation', async () => {
    const ca = await TestCa.create({ trustDomain: TD });
    const other = await TestCa.create({ trustDomain: 'other.org' });
    const svid = await ca.mintSvid(API);
    const primary = new IdentityStore(systemClock);
    primary.update({ chain: svid.chain, key: svid.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem()), TrustBundle.parse('other.org', other.bundlePem())]), source: 'files' });
    primary.update({ chain: svid.chain, key: svid.key, bundles: primary.current!.bundles, source: 'files' });
    const w = wire(encodeIdentity(primary.current!));
    expect(w.generation).toBe(2);
    const worker = new IdentityStore(systemClock);
    const s = worker.update(decodeIdentity(w));
    expect(s.generation).toBe(1);
    expect(s.id.toString()).toBe(API);
    expect(s.serial).toBe(primary.current!.serial);
    expect(s.chainPem).toBe(primary.current!.chainPem);
    expect(s.keyPem).toBe(primary.current!.keyPem);
    expect(s.caPem).toBe(primary.current!.caPem);
    expect(s.bundles.trustDomains()).toEqual(['example.org', 'other.org']);
  });

  test('a key that does not match the chain is refused whole by the worker’s store', async () => {
    const ca = await TestCa.create({ trustDomain: TD });
    const [a, b] = [await ca.mintSvid(API), await ca.mintSvid(API)];
    const store = new IdentityStore(systemClock);
    store.update({ chain: a.chain, key: a.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]), source: 'files' });
    const w = { ...encodeIdentity(store.current!), keyPem: b.keyPem };
    const worker = new IdentityStore(systemClock);
    expect(() => worker.update(decodeIdentity(w))).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_IDENTITY_INVALID' }));
    expect(worker.current).toBeUndefined();
  });

  test('PEM that does not parse is a coded error, not a crash', () => {
    expect(() => decodeIdentity({ generation: 1, chainPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', keyPem: 'x', bundles: [], source: 'files' })).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^TESSERA_ERR_/) }),
    );
  });
});

test('policies keep their version, default action and break-glass grants', () => {
  const primary = new PolicyHolder('deny');
  expect(encodePolicies(primary)).toBeUndefined(); // nothing loaded yet: nothing to send
  const grant = { id: 'g1', to: API, from: ['spiffe://example.org/ns/ops/sa/oncall'], expiresAtMs: 4_000_000_000_000, reason: 'incident' };
  primary.setPolicies([{ name: 'web-to-api', selector: API, action: 'ALLOW', mode: 'enforce', rules: [{ from: ['spiffe://example.org/ns/default/sa/web'], to: { methods: ['GET'] } }] }], [grant], 'v42');
  const worker = new PolicyHolder('deny');
  applyPolicies(worker, wire(encodePolicies(primary)!));
  expect(worker.loaded).toBe(true);
  expect(worker.current.version).toBe('v42');
  expect(worker.current.policies).toEqual(primary.current.policies);
  expect(worker.current.breakGlass).toEqual([grant]);
  expect(worker.current.defaultAction).toBe('deny');
});

test('the deny-list keeps its SPIFFE IDs and canonical serials', () => {
  const list = createDenyList(['spiffe://example.org/ns/x/sa/bad'], ['0A:1B:2C']);
  const back = decodeDenyList(wire(encodeDenyList(list)));
  expect([...back.spiffeIds]).toEqual([...list.spiffeIds]);
  expect([...back.serials]).toEqual([...list.serials]);
});

test('the directory is installed as exactly the primary’s services, also when one disappears or the version restarts', () => {
  const ep = (port: number) => ({ address: `10.0.0.1:${port}`, spiffe_id: API, protocol: 'http', ready: true, zone: 'a', weight: 100, source: 'self' });
  const primary = new ServiceDirectory();
  const worker = new ServiceDirectory();
  expect(encodeDirectory(primary)).toBeUndefined();
  primary.apply({ version: '7', full: true, generated_at_unix_ms: '0', services: [{ service: 'api', endpoints: [ep(1), ep(2)] }, { service: 'db', endpoints: [ep(3)] }] }, { all: true });
  const heard: string[] = [];
  worker.subscribeAll((service, list) => heard.push(`${service}:${list?.length ?? 'gone'}`));
  applyDirectory(worker, wire(encodeDirectory(primary)!));
  expect(worker.names().sort()).toEqual(['api', 'db']);
  expect(worker.get('api')).toEqual(primary.get('api'));
  expect(worker.version).toBe('7');
  // A new control-plane replica restarts the versions and drops db.
  primary.apply({ version: '1', full: true, generated_at_unix_ms: '0', services: [{ service: 'api', endpoints: [ep(2)] }] }, { all: true }, { rebase: true });
  applyDirectory(worker, wire(encodeDirectory(primary)!));
  expect(worker.names()).toEqual(['api']);
  expect(worker.get('api')!.map((e) => e.port)).toEqual([2]);
  expect(heard).toEqual(['api:2', 'db:1', 'api:1', 'db:gone']);
});
