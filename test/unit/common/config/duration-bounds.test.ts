// A duration that becomes a timer is at most Node's longest timer (2^31-1 ms, 24.8 days): a longer one fired after
// 1 ms (drainTimeout: 30d cut requests at SIGTERM; ticketKeyRotation: 30d rotated keys every millisecond). Refused
// at load naming the key and line; lifetimes (an SVID's, a root's) keep their own bounds. A config past 1 MiB is
// refused before it is parsed.
import { expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { MAX_CONFIG_BYTES } from '../../../../common/config/validate-yaml.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';

const PROXY = 'identity:\n  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }\nworkloadApi: { socket: /run/w.sock }\n';

function refusal(f: () => unknown): { key: unknown; line: unknown; message: string } {
  try {
    f();
  } catch (e) {
    if (isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')) return { key: e.details['key'], line: e.details['line'], message: e.message };
    throw e;
  }
  throw new Error('accepted');
}

test('proxy timers: 24 days is taken, 25 days or 30 days is refused naming the key and line', () => {
  const proxy = (limits: string) => parseProxyConfig(`${PROXY}limits:\n${limits}`, '/etc/tessera/p.yaml');
  expect(proxy('  drainTimeout: 24d\n').limits.drainTimeoutMs).toBe(24 * 86_400_000);
  for (const [key, value] of [['drainTimeout', '25d'], ['ticketKeyRotation', '30d'], ['idleTimeout', '600h'], ['streamIdleTimeout', '9999999h']]) {
    const r = refusal(() => proxy(`  ${key}: ${value}\n`));
    expect(r, `${key}: ${value}`).toMatchObject({ key: `limits.${key}`, line: 5 });
    expect(r.message).toContain('at most 24 days');
  }
});

test('.nan, .inf and -.inf are not durations (NaN passed every bound: handshakeTimeout: .nan removed the deadline)', () => {
  for (const v of ['.nan', '.NaN', '.inf', '-.inf']) {
    const r = refusal(() => parseProxyConfig(`${PROXY}limits:\n  handshakeTimeout: ${v}\n`, '/etc/tessera/p.yaml'));
    expect(r, v).toMatchObject({ key: 'limits.handshakeTimeout', line: 5 });
  }
});

test('control-plane lifetimes are not timers: an SVID ttl of 30 days and a root of 10 years are taken; a year is the SVID bound', () => {
  const cp = (extra: string) => parseControlPlaneConfig(`trustDomain: a.test\ndataDir: ./d\n${extra}`, '/etc/tessera/cp.yaml');
  const c = cp('svid:\n  ttl: 720h\n  maxTtl: 720h\nca:\n  rootTtl: 87600h\n');
  expect(c.svid.ttlMs).toBe(720 * 3_600_000);
  expect(refusal(() => cp('svid:\n  ttl: 9000h\n')).key).toBe('svid.ttl');
  // A timer of the control plane is bounded like the proxy's.
  expect(refusal(() => cp('federation:\n  refreshMax: 30d\n')).key).toBe('federation.refreshMax');
  // audit.keep is a retention, not a timer: 400 days by default, ten years taken, under a day refused.
  expect(cp('').audit.keepMs).toBe(400 * 86_400_000);
  expect(cp('audit:\n  keep: 3650d\n').audit.keepMs).toBe(3650 * 86_400_000);
  expect(refusal(() => cp('audit:\n  keep: 12h\n'))).toMatchObject({ key: 'audit.keep', line: 4 });
  // inventory.keep too: a day by default (as a join token's), a year taken, down to a test's second.
  expect(cp('').inventory.keepMs).toBe(86_400_000);
  expect(cp('inventory:\n  keep: 365d\n').inventory.keepMs).toBe(365 * 86_400_000);
  expect(cp('inventory:\n  keep: 1s\n').inventory.keepMs).toBe(1_000);
  expect(refusal(() => cp('inventory:\n  keep: 0s\n'))).toMatchObject({ key: 'inventory.keep', line: 4 });
  // The lifetimes' own rules say durations as they are typed, not in raw milliseconds (audit 36b).
  expect(refusal(() => cp('svid:\n  ttl: 48h\n  maxTtl: 24h\n')).message).toContain('svid.ttl: 2d is longer than svid.maxTtl (1d)');
  expect(refusal(() => cp('svid:\n  ttl: 90s\n  backdate: 60s\n')).message).toContain('svid.ttl: 1m30s is less than twice svid.backdate (1m)');
});

test('a config file past 1 MiB is refused before it is parsed', () => {
  const big = `${PROXY}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`;
  expect(refusal(() => parseProxyConfig(big, '/etc/tessera/p.yaml')).message).toMatch(/^\/etc\/tessera\/p\.yaml:1: the file is \d+ bytes/);
});
