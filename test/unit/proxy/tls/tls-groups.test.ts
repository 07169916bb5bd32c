// Key-exchange groups between proxies (`transport.tlsGroups`): the config key, and the group a real TLS 1.3
// handshake on loopback settles on between the proxy's server options and its client contexts (or Node's default
// client), for the default (X25519 first) and for the post-quantum hybrid first.
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { buildIdentitySnapshot, type IdentitySnapshot } from '../../../../proxy/src/identity/identity-snapshot.js';
import { ClientContexts, DEFAULT_TLS_GROUPS, serverGroupList, serverSecureOptions, type TlsGroup } from '../../../../proxy/src/tls/tls-contexts.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { transportConfig as config, transportConfigError } from '../../../helpers/transport-config.js';

const TD = 'example.org';
const HYBRID_FIRST: TlsGroup[] = ['X25519MLKEM768', 'X25519', 'P-256', 'P-384'];

describe('transport.tlsGroups', () => {
  test('default: X25519 first, the hybrid and the NIST curves after it', () => {
    expect(config('').transport.tlsGroups).toEqual(['X25519', 'X25519MLKEM768', 'P-256', 'P-384']);
  });

  test('an order of the operator is kept', () => {
    expect(config('transport: { tlsGroups: [X25519MLKEM768, X25519] }').transport.tlsGroups).toEqual(['X25519MLKEM768', 'X25519']);
  });

  test.each([
    ['an unknown group', 'transport: { tlsGroups: [X25519, ffdhe2048] }', /tlsGroups/],
    ['an empty list', 'transport: { tlsGroups: [] }', /tlsGroups/],
    ['a group twice', 'transport: { tlsGroups: [X25519, X25519MLKEM768, X25519] }', /tlsGroups\[2\]: "X25519" is listed twice/],
  ])('%s is refused', (_what, yaml, message) => {
    const err = transportConfigError(yaml);
    expect(err.code).toBe('TESSERA_ERR_CONFIG_INVALID');
    expect(err.message).toMatch(message);
  });

  test('server list: one preference tuple when classical comes first, strict order when the hybrid does', () => {
    expect(serverGroupList(DEFAULT_TLS_GROUPS)).toBe('X25519:X25519MLKEM768:P-256:P-384');
    expect(serverGroupList(HYBRID_FIRST)).toBe('X25519MLKEM768 / X25519 / P-256 / P-384');
  });
});

describe('negotiated group over real TLS 1.3', () => {
  let snapshot: IdentitySnapshot;

  beforeAll(async () => {
    const ca = await TestCa.create({ trustDomain: TD });
    const api = await ca.mintSvid(`spiffe://${TD}/ns/default/sa/api`);
    snapshot = buildIdentitySnapshot({ chain: api.chain, key: api.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]), source: 'files' }, 1, Date.now());
  });

  const servers: tls.Server[] = [];
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));

  /** The group of one handshake between a server with `serverGroups` and a client (ClientContexts or Node's default). */
  async function negotiated(serverGroups: readonly TlsGroup[] | undefined, client: readonly TlsGroup[] | 'node-default'): Promise<string> {
    const server = tls.createServer(serverSecureOptions(snapshot, Buffer.alloc(48, 1), '1.3', [], serverGroups), (s) => s.end());
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const secure = client === 'node-default' ? { cert: snapshot.chainPem, key: snapshot.keyPem } : { secureContext: new ClientContexts(client).get(snapshot) };
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ...secure, rejectUnauthorized: false }, () => {
        resolve((s.getEphemeralKeyInfo() as { name?: string }).name ?? 'unknown');
        s.destroy();
      });
      s.on('error', reject);
    });
  }

  test.each<[string, readonly TlsGroup[] | undefined, readonly TlsGroup[] | 'node-default', string]>([
    ['two default proxies: X25519', undefined, DEFAULT_TLS_GROUPS, 'X25519'],
    ['default proxy, a client sending hybrid and X25519 shares (Node default): X25519', undefined, 'node-default', 'X25519'],
    ['default server, hybrid-first client: the hybrid share it sent is taken', undefined, HYBRID_FIRST, 'X25519MLKEM768'],
    ['hybrid-first server, default client: the server asks for the hybrid', HYBRID_FIRST, DEFAULT_TLS_GROUPS, 'X25519MLKEM768'],
    ['both hybrid first', HYBRID_FIRST, HYBRID_FIRST, 'X25519MLKEM768'],
    ['hybrid-first server, client without the hybrid: X25519', HYBRID_FIRST, ['X25519', 'P-256'], 'X25519'],
  ])('%s', async (_what, server, client, group) => {
    expect(await negotiated(server, client)).toBe(group);
  });

  test('a server listing only the hybrid refuses a client without it', async () => {
    await expect(negotiated(['X25519MLKEM768'], ['X25519', 'P-256'])).rejects.toThrow(/handshake failure|alert/i);
  });
});
