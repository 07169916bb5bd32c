// A proxy config needs something to serve: a listener, or the Workload API alone (the SVID-only sidecar an
// injected pod without port annotations runs). With neither, the error names the key and line as every config
// error does.
import { expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';

const IDENTITY = 'identity:\n  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }\n';

test('the Workload API alone is a valid sidecar: no listener', () => {
  const c = parseProxyConfig(`${IDENTITY}workloadApi: { socket: /run/tessera/workload.sock }\n`, '/etc/tessera/proxy.yaml');
  expect([c.inbound, c.outbound, c.edge]).toEqual([[], [], []]);
  expect(c.workloadApi).toEqual({ socket: '/run/tessera/workload.sock' });
});

test('neither a listener nor the Workload API: refused, naming the key', () => {
  try {
    parseProxyConfig(`${IDENTITY}admin: { listen: 127.0.0.1:15000 }\n`, '/etc/tessera/proxy.yaml');
    expect.unreachable('parsed');
  } catch (e) {
    expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')).toBe(true);
    expect((e as Error).message).toMatch(/^\/etc\/tessera\/proxy\.yaml:\d+: inbound: at least one inbound, outbound or edge listener is required, or workloadApi/);
  }
});
