// The `federation` block of the control-plane config: resolved paths and defaults, and each cross-key rule
// refused with TESSERA_ERR_CONFIG_INVALID naming the key and its line.
import { describe, expect, test } from 'vitest';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';

const base = 'trustDomain: a.test\ndataDir: ./data\n';
const parse = (fed: string) => parseControlPlaneConfig(`${base}federation:\n${fed}`, '/etc/tessera/cp.yaml');
const domain = (extra: string) => `  trustDomains:\n    - trustDomain: b.test\n      bundleEndpointUrl: https://cp.b.test:8445/\n${extra}`;

function refusal(fed: string): { code: string; key: unknown; line: unknown } {
  try {
    parse(fed);
  } catch (e) {
    const err = e as { code: string; details: Record<string, unknown> };
    return { code: err.code, key: err.details['key'], line: err.details['line'] };
  }
  throw new Error('accepted');
}

describe('federation config', () => {
  test('https_spiffe with its endpoint ID and bootstrap bundle; defaults; paths resolved against the file', () => {
    const c = parse(`  bundleEndpoint: { listen: 127.0.0.1:0 }\n${domain('      profile: https_spiffe\n      endpointSpiffeId: spiffe://b.test/tessera/control-plane\n      bundleFile: b-bundle.json\n')}`);
    expect(c.federation?.bundleEndpoint).toEqual({ listen: '127.0.0.1:0' });
    expect(c.federation?.refreshMinMs).toBe(30_000);
    expect(c.federation?.refreshMaxMs).toBe(3_600_000);
    const d = c.federation!.trustDomains[0]!;
    expect(d.trustDomain.name).toBe('b.test');
    expect(d.endpointSpiffeId?.toString()).toBe('spiffe://b.test/tessera/control-plane');
    expect(d.bundleFile).toBe('/etc/tessera/b-bundle.json');
  });

  test('https_web endpoint needs certFile and keyFile together', () => {
    expect(parse('  bundleEndpoint: { listen: 127.0.0.1:0, certFile: s.pem, keyFile: s.key }\n').federation?.bundleEndpoint).toEqual({ listen: '127.0.0.1:0', certFile: '/etc/tessera/s.pem', keyFile: '/etc/tessera/s.key' });
    expect(refusal('  bundleEndpoint: { listen: 127.0.0.1:0, certFile: s.pem }\n')).toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID', key: 'federation.bundleEndpoint' });
  });

  test.each([
    ['own trust domain', domain('      profile: https_web\n').replace('b.test', 'a.test'), 'federation.trustDomains[0].trustDomain'],
    ['https_spiffe without endpointSpiffeId', domain('      profile: https_spiffe\n      bundleFile: b.json\n'), 'federation.trustDomains[0].endpointSpiffeId'],
    ['https_spiffe without bundleFile', domain('      profile: https_spiffe\n      endpointSpiffeId: spiffe://b.test/x\n'), 'federation.trustDomains[0].bundleFile'],
    ['plain http URL', domain('      profile: https_web\n').replace('https://', 'http://'), 'federation.trustDomains[0].bundleEndpointUrl'],
    ['refreshMin above refreshMax', '  refreshMin: 2h\n', 'federation.refreshMin'],
    ['a domain listed twice', `${domain('      profile: https_web\n')}    - { trustDomain: b.test, bundleEndpointUrl: "https://x/", profile: https_web }\n`, 'federation.trustDomains[1].trustDomain'],
    // The same rules on the spiffe:// spelling, which names the same trust domain (audit: our own CA replaced).
    ['own trust domain spelled spiffe://a.test', domain('      profile: https_web\n').replace('trustDomain: b.test', 'trustDomain: "spiffe://a.test"'), 'federation.trustDomains[0].trustDomain'],
    ['a domain listed twice, once spelled spiffe://', `${domain('      profile: https_web\n')}    - { trustDomain: "spiffe://b.test", bundleEndpointUrl: "https://x/", profile: https_web }\n`, 'federation.trustDomains[1].trustDomain'],
    ['a trust domain with an empty label (..)', domain('      profile: https_web\n').replace('trustDomain: b.test', 'trustDomain: ".."'), 'federation.trustDomains[0].trustDomain'],
    ['a trust domain with a trailing dot', domain('      profile: https_web\n').replace('trustDomain: b.test', 'trustDomain: "b.test."'), 'federation.trustDomains[0].trustDomain'],
  ])('refuses %s', (_name, fed, key) => {
    const r = refusal(fed);
    expect(r).toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID', key });
    expect(r.line).toBeGreaterThan(2);
  });

  test('own trust domain in the spiffe:// spelling, on either side, is refused', () => {
    const own = domain('      profile: https_web\n').replace('trustDomain: b.test', 'trustDomain: a.test');
    expect(() => parseControlPlaneConfig(`trustDomain: "spiffe://a.test"\ndataDir: ./data\nfederation:\n${own}`, '/etc/tessera/cp.yaml')).toThrowError(/own trust domain/);
  });

  test('unknown keys and unknown profiles are refused by the schema', () => {
    expect(refusal(domain('      profile: https_other\n')).code).toBe('TESSERA_ERR_CONFIG_INVALID');
    expect(refusal(`${domain('      profile: https_web\n')}      extra: 1\n`).code).toBe('TESSERA_ERR_CONFIG_INVALID');
  });
});
