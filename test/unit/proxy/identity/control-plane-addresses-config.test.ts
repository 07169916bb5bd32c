// identity.controlPlane.address / .addresses / .failbackInterval in the proxy config: exactly one of the two
// address keys, the list in order, and mistakes reported with the file, line and key like every config error.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';

const LISTENER = 'inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:8080 }\n';

function parse(controlPlane: string) {
  return parseProxyConfig(`identity:\n  controlPlane:\n${controlPlane}    bundleFile: ./b.pem\n    joinTokenFile: ./t\n${LISTENER}`, '/etc/tessera/proxy.yaml');
}

function problem(controlPlane: string): { message: string; line: unknown; key: unknown } {
  try {
    parse(controlPlane);
  } catch (e) {
    if (isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')) return { message: e.message, line: e.details['line'], key: e.details['key'] };
    throw e;
  }
  throw new Error('parsed');
}

describe('control-plane addresses in the proxy config', () => {
  test('address: one replica (a DNS name allowed), failback every 30 s by default', () => {
    const c = parse('    address: cp.tessera-system.svc:8443\n');
    expect(c.identity).toMatchObject({ kind: 'controlPlane', addresses: ['cp.tessera-system.svc:8443'], failbackIntervalMs: 30_000 });
  });

  test('addresses: the replicas in preference order; failbackInterval as a duration', () => {
    const c = parse('    addresses: [10.0.0.5:8443, "[fd00::6]:8443", cp-c.example:8443]\n    failbackInterval: 5s\n');
    expect(c.identity).toMatchObject({ addresses: ['10.0.0.5:8443', '[fd00::6]:8443', 'cp-c.example:8443'], failbackIntervalMs: 5_000 });
  });

  test('both or neither of address and addresses: refused, naming the keys and the line', () => {
    const both = problem('    address: 10.0.0.5:8443\n    addresses: [10.0.0.6:8443]\n');
    expect(both.message).toMatch(/^\/etc\/tessera\/proxy\.yaml:3:\d+: identity\.controlPlane: exactly one of address \/ addresses must be set \(found address and addresses\)/);
    const neither = problem('');
    expect(neither.message).toContain('identity.controlPlane: exactly one of address / addresses must be set');
  });

  test('a bad entry, an empty list, a repeated address, a too-short interval: each named with its line', () => {
    const bad = problem('    addresses:\n      - 10.0.0.5:8443\n      - 10.0.0.6\n');
    expect(bad.message).toMatch(/proxy\.yaml:5:\d+: identity\.controlPlane\.addresses\[1\]: "10\.0\.0\.6" is not a host:port address/);
    expect(problem('    addresses: []\n').message).toContain('identity.controlPlane.addresses: needs at least 1 item(s)');
    const twice = problem('    addresses:\n      - 10.0.0.5:8443\n      - 10.0.0.6:8443\n      - 10.0.0.5:8443\n');
    expect(twice).toMatchObject({ line: 6, key: 'identity.controlPlane.addresses[2]' });
    expect(twice.message).toContain('"10.0.0.5:8443" is listed twice');
    expect(problem('    address: 10.0.0.5:8443\n    failbackInterval: 100ms\n').message).toContain('identity.controlPlane.failbackInterval: must be at least 1s (got 100ms)');
    const many = Array.from({ length: 17 }, (_, i) => `10.0.0.${i + 1}:8443`).join(', ');
    expect(problem(`    addresses: [${many}]\n`).message).toContain('takes at most 16 item(s)');
  });
});
