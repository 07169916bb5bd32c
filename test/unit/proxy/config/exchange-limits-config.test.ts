// A listener's or an edge route's own `requestTimeout` and `minRequestBodyRate`, over the proxy-wide limits (audit 62b
// I1, I2: a long-poll API and a sensor's trickled uploads could only be let through for every listener at once).
// Absent, the proxy-wide value holds; out of range, the key is named at its line.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { withExchangeLimits } from '../../../../proxy/src/config/exchange-limits.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';

const config = (inbound: string, outbound: string, route: string) =>
  [
    'identity:',
    '  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }',
    'inbound:',
    `  - { name: app, listen: 127.0.0.1:15006, forwardTo: 127.0.0.1:8080${inbound} }`,
    'outbound:',
    `  - { name: api, listen: 127.0.0.1:15001, upstream: 127.0.0.1:15106, spiffeId: spiffe://example.org/api${outbound} }`,
    'edge:',
    '  - name: public',
    '    listen: 127.0.0.1:8443',
    '    certFile: e.pem',
    '    keyFile: e.key',
    '    routes:',
    `      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:8080, unsafePlaintext: true${route} }`,
    'limits: { requestTimeout: 30s, minRequestBodyRate: 500 }',
    '',
  ].join('\n');

describe('requestTimeout and minRequestBodyRate per listener and per edge route', () => {
  test('set where written, absent elsewhere; the proxy-wide limits stay as they are', () => {
    const c = parseProxyConfig(config(', requestTimeout: 120s', ', minRequestBodyRate: 0', ', requestTimeout: 2s, minRequestBodyRate: 10'), '/etc/tessera/proxy.yaml');
    expect(c.inbound[0]).toMatchObject({ requestTimeoutMs: 120_000 });
    expect(c.inbound[0]!.minRequestBodyRate).toBeUndefined();
    expect(c.outbound[0]).toMatchObject({ minRequestBodyRate: 0 });
    expect(c.outbound[0]!.requestTimeoutMs).toBeUndefined();
    expect(c.edge[0]!.routes[0]).toMatchObject({ requestTimeoutMs: 2_000, minRequestBodyRate: 10 });
    expect(c.limits).toMatchObject({ requestTimeoutMs: 30_000, minRequestBodyRate: 500 });
  });

  test.each([
    [', requestTimeout: 50ms', '', '', /inbound\[0\]\.requestTimeout/],
    ['', ', minRequestBodyRate: -1', '', /outbound\[0\]\.minRequestBodyRate/],
    ['', '', ', minRequestBodyRate: 1.5', /edge\[0\]\.routes\[0\]\.minRequestBodyRate/],
  ])('out of range is refused, naming the key (%#)', (inbound, outbound, route, key) => {
    try {
      parseProxyConfig(config(inbound, outbound, route), '/etc/tessera/proxy.yaml');
      expect.unreachable('parsed');
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')).toBe(true);
      expect((e as Error).message).toMatch(key);
    }
  });

  test('withExchangeLimits: the overrides in place, the rest kept; the same object when none is set', () => {
    const limits = { requestTimeoutMs: 60_000, minRequestBodyRate: 240, headersTimeoutMs: 10_000 };
    expect(withExchangeLimits(limits, {})).toBe(limits);
    expect(withExchangeLimits(limits, { minRequestBodyRate: 0 })).toEqual({ requestTimeoutMs: 60_000, minRequestBodyRate: 0, headersTimeoutMs: 10_000 });
    expect(withExchangeLimits(limits, { requestTimeoutMs: 1_000 })).toEqual({ requestTimeoutMs: 1_000, minRequestBodyRate: 240, headersTimeoutMs: 10_000 });
  });
});
