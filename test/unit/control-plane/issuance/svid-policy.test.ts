// svidValidity's lifetime for what a caller asks (SignSvid ttl_seconds): capped at svid.ttl, raised to twice
// svid.backdate, the configured ttl for 0 or less; whole seconds, never past the signing chain.
import { describe, expect, test } from 'vitest';
import { svidValidity } from '../../../../control-plane/src/issuance/svid-policy.js';

const NOW = Date.UTC(2026, 5, 1, 12);
const base = { nowMs: NOW, ttlMs: 3_600_000, maxTtlMs: 86_400_000, backdateMs: 60_000, issuerNotBeforeMs: NOW - 86_400_000, issuerNotAfterMs: NOW + 30 * 86_400_000 };
/** NotAfter - now, in seconds, for a request of `ttlS` seconds (and the overrides). */
const lifeS = (ttlS: number, o: Partial<typeof base> = {}) => (svidValidity({ ...base, ...o, requestedTtlMs: ttlS * 1000 }).notAfterMs - NOW) / 1000;

describe('svidValidity: the requested lifetime', () => {
  test('a request shorter than twice the backdate is raised to it: never an SVID valid mostly in the past (audit 55c F5)', () => {
    for (const s of [0.001, 1, 2, 59, 60, 61, 119]) expect(lifeS(s), `${s} s`).toBe(120);
    expect(svidValidity({ ...base, requestedTtlMs: 1000 }).notBeforeMs).toBe(NOW - 60_000);
    // The floor follows the backdate: 1 s of backdate, 2 s floor; none without a backdate.
    expect(lifeS(1, { backdateMs: 1_000 })).toBe(2);
    expect(lifeS(3, { backdateMs: 1_000 })).toBe(3);
    expect(lifeS(1, { backdateMs: 0 })).toBe(1);
  });

  test('at or above the floor a request is honoured up to svid.ttl; 0 or less is svid.ttl', () => {
    expect(lifeS(120)).toBe(120);
    expect(lifeS(121)).toBe(121);
    expect(lifeS(1800)).toBe(1800);
    for (const s of [3600, 3601, 99_999_999]) expect(lifeS(s), `${s} s`).toBe(3600);
    for (const s of [0, -5]) expect(lifeS(s), `${s} s`).toBe(3600);
  });

  test('the floor never lifts a lifetime past svid.ttl or the signing chain', () => {
    expect(lifeS(1, { ttlMs: 90_000 })).toBe(90);
    expect(lifeS(1, { issuerNotAfterMs: NOW + 30_000 })).toBe(30);
  });
});
