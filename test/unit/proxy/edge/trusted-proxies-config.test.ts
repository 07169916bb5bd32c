// edge[].trustedProxies entries are read as written or refused (audit 10 F4): a /33 was taken as half of IPv4 and
// an IPv6 CIDR as all of it, so spoofed client-address fields from anywhere passed as a trusted proxy's.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';

const config = (entries: string[]) =>
  [
    'identity:',
    '  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }',
    'edge:',
    '  - name: public',
    '    listen: 127.0.0.1:8443',
    '    certFile: e.pem',
    '    keyFile: e.key',
    `    trustedProxies: [${entries.map((e) => JSON.stringify(e)).join(', ')}]`,
    '    routes:',
    '      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:8080, unsafePlaintext: true }',
    '',
  ].join('\n');

describe('edge[].trustedProxies', () => {
  test('addresses (IPv4 and IPv6) and IPv4 CIDRs of 0 to 32 bits are taken', () => {
    const c = parseProxyConfig(config(['10.1.2.3', '::1', 'fd00::7', '10.0.0.0/8', '0.0.0.0/0', '192.0.2.1/32']), '/etc/tessera/proxy.yaml');
    expect(c.edge[0]!.trustedProxies).toHaveLength(6);
  });

  test.each([['10.0.0.0/33'], ['10.0.0.0/99'], ['::/0'], ['fd00::/8'], ['10.0.0/8'], ['10.0.0.0/'], ['example.com'], ['10.0.0.256']])('%s is refused, naming the key', (entry) => {
    try {
      parseProxyConfig(config([entry]), '/etc/tessera/proxy.yaml');
      expect.unreachable('parsed');
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')).toBe(true);
      expect((e as Error).message).toMatch(/edge\[0\]\.trustedProxies\[0\]/);
    }
  });
});
