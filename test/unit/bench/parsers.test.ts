// Parsers and models of tool output: `openssl speed -mr`, the handshake crypto floor, h2load's report.
import { expect, test } from 'vitest';
import { handshakeFloorUs, parseOpensslSpeedMr } from '../../../bench/harness/crypto-floor.js';
import { parseH2load } from '../../../bench/harness/h2load-load.js';

const SPEED = ['+DT:ecdsa:256:1', '+R5:49314:256:1.00', '+F2:2:2048:3596.000000:66110.000000', '+F4:3:256:50000.000000:16000.000000', '+F5:3:256:20000.000000:0.000050', '+F5:22:253:40000.000000:0.000025'].join('\n');

test('openssl speed -mr: ECDSA, ECDH P-256, X25519 and RSA rates', () => {
  expect(parseOpensslSpeedMr(SPEED)).toEqual({
    ecdsaP256SignPerSec: 50_000,
    ecdsaP256VerifyPerSec: 16_000,
    ecdhP256PerSec: 20_000,
    x25519PerSec: 40_000,
    rsa2048SignPerSec: 3_596,
    rsa2048VerifyPerSec: 66_110,
    mlkem768EncapPerSec: null,
  });
});

test('handshake floor per side = 1 sign + 3 verifies + key exchange (reference/peer-baseline.md model)', () => {
  const r = parseOpensslSpeedMr(SPEED);
  // 20 µs sign + 3 × 62.5 µs verify + 50 µs ECDH = 257.5 µs
  expect(handshakeFloorUs(r, 'p256')).toBeCloseTo(257.5, 6);
  expect(handshakeFloorUs(r, 'x25519')).toBeCloseTo(20 + 187.5 + 25, 6);
  // RSA leaf: RSA sign, two ECDSA verifies (the CA chain), one RSA verify (CertificateVerify).
  expect(handshakeFloorUs(r, 'x25519', 'rsa')).toBeCloseTo(1e6 / 3596 + 125 + 1e6 / 66110 + 25, 6);
  // No ML-KEM rate from openssl 3.0: no hybrid floor rather than a wrong one.
  expect(handshakeFloorUs(r, 'x25519mlkem768')).toBeNull();
  expect(handshakeFloorUs({ ...r, mlkem768EncapPerSec: 50_000 }, 'x25519mlkem768')).toBeCloseTo(20 + 187.5 + 25 + 20, 6);
});

test('h2load report: rate, counts, status classes and the mean time per request', () => {
  const text = `starting benchmark...
finished in 3.00s, 56548.33 req/s, 2.05MB/s
requests: 169645 total, 169677 started, 169645 done, 169640 succeeded, 5 failed, 5 errored, 0 timeout
status codes: 169640 2xx, 0 3xx, 3 4xx, 2 5xx
traffic: 6.15MB (6445630) total, 1.62MB (1696450) headers (space savings 90.00%), 496.99KB (508920) data
                     min         max         mean         sd        +/- sd
time for request:      103us     12.25ms       540us       293us    86.71%
time for connect:      208us       310us       254us        43us    75.00%
req/s           :   14000.10    14300.50    14137.08      120.39    75.00%
`;
  const r = parseH2load(text);
  expect(r.ok2xx).toBe(169_640);
  expect(r.non2xx).toBe(5);
  expect(r.errors).toBe(10);
  expect(r.elapsedMs).toBe(3000);
  expect(r.reqPerSec).toBeCloseTo(169_640 / 3, 3);
  expect(r.latency.meanMs).toBeCloseTo(0.54, 6);
  expect(r.latency.maxMs).toBeCloseTo(12.25, 6);
  expect(r.latency.p99Ms).toBeNaN();
  expect(() => parseH2load('connection refused')).toThrow(/unexpected h2load output/);
});
