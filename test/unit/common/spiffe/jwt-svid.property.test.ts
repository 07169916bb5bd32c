// Property tests of JWT-SVID validation (common/spiffe/jwt-svid.ts), reached by any workload through the Workload
// API's ValidateJWTSVID and by `tessera svid verify --jwt`: for tokens whose signature verifies but whose header and
// claims are generated (odd algs, kids, types, crit; subjects, audiences, exp/nbf of any JSON type and size) and for
// valid tokens with their text mutated, validation either accepts a token that meets every rule, or refuses it
// with one of the JWT-SVID refusal codes. Never another error: a refusal is what the caller counts and answers.
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { decodeJwt, JWT_SKEW_MS, JWT_SVID_REFUSALS, type JwtBundleSet, signJwtSvid, validateJwtSvid } from '../../../../common/spiffe/jwt-svid.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const AUDIENCE = 'svc-a';
const ID = 'spiffe://example.org/ns/default/sa/api';
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const bundles: JwtBundleSet = new Map([['example.org', new Map<string, KeyObject>([['k1', ec.publicKey]])]]);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Header and claims as given, signed with the bundle's ES256 key (so only what they say decides). */
function signed(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

type Outcome = { readonly accepted: ReturnType<typeof validateJwtSvid> } | { readonly refused: string };

/** Validation's answer; any error that is not a JWT-SVID refusal fails the property. */
function outcome(token: string): Outcome {
  try {
    return { accepted: validateJwtSvid(token, AUDIENCE, bundles, NOW) };
  } catch (e) {
    if (isTesseraError(e) && e.code in JWT_SVID_REFUSALS) return { refused: e.code };
    throw new Error(`not a JWT-SVID refusal: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
  }
}

/** What an accepted token must be, whatever the generator made. */
function expectLawful(v: ReturnType<typeof validateJwtSvid>, header: Record<string, unknown>, claims: Record<string, unknown>): void {
  expect(header['alg']).toBe('ES256');
  expect(header['kid']).toBe('k1');
  expect(SpiffeId.parse(String(claims['sub'])).trustDomain.name).toBe('example.org');
  const aud = claims['aud'];
  expect(typeof aud === 'string' ? aud === AUDIENCE : Array.isArray(aud) && aud.includes(AUDIENCE)).toBe(true);
  expect(v.expiresAtMs + JWT_SKEW_MS).toBeGreaterThan(NOW);
  // nbf and iat, when present, are dates not ahead of now beyond the skew (audit 38c I1: iat was never judged).
  for (const claim of ['nbf', 'iat']) {
    const d = claims[claim];
    if (d === undefined) continue;
    expect(typeof d === 'number' && Number.isFinite(d) && Math.abs(d) <= 8.64e12, claim).toBe(true);
    expect((d as number) * 1000 - JWT_SKEW_MS, claim).toBeLessThanOrEqual(NOW);
  }
  // Never a reserved subject (audit 38c F4): the bare trust-domain ID or the control plane's own.
  expect(v.spiffeId.path === '' || v.spiffeId.path === '/tessera/control-plane').toBe(false);
  // A date a caller can print and compare.
  expect(() => new Date(v.expiresAtMs).toISOString()).not.toThrow();
}

const anyJson: fc.Arbitrary<unknown> = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.string(), { maxKeys: 2 }));
/** NumericDate-like values: near now, far, huge, negative, fractional, and not numbers at all. */
const dateLike: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -600, max: 3_600 }).map((d) => NOW / 1000 + d) },
  { weight: 2, arbitrary: fc.constantFrom(0, -1, 1e10, -1e10, 8.64e12, 8.64e12 + 1, -8.64e12 - 1, 1e20, -1e20, 1e300, -1e300, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE) },
  { weight: 1, arbitrary: fc.double({ noNaN: true }) },
  { weight: 1, arbitrary: anyJson },
);
const header = fc.record(
  {
    alg: fc.oneof({ weight: 6, arbitrary: fc.constant('ES256') }, { weight: 1, arbitrary: fc.constantFrom('none', 'HS256', 'RS256', 'ES384', 'es256', 'ES256 ', '') }, { weight: 1, arbitrary: anyJson }),
    kid: fc.oneof({ weight: 6, arbitrary: fc.constant('k1') }, { weight: 1, arbitrary: fc.constantFrom('', 'k2', '__proto__', 'constructor') }, { weight: 1, arbitrary: anyJson }),
    // Mostly absent (JSON.stringify leaves undefined out): present, nearly any value refuses the token.
    typ: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(undefined, 'JWT', 'JOSE') }, { weight: 1, arbitrary: anyJson }),
    crit: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: anyJson }),
  },
  { requiredKeys: ['alg', 'kid', 'typ', 'crit'] },
);
const claims = fc.record(
  {
    sub: fc.oneof({ weight: 6, arbitrary: fc.constant(ID) }, { weight: 1, arbitrary: fc.constantFrom('spiffe://example.org', 'spiffe://other.org/w', 'spiffe://EXAMPLE.org/w', 'spiffe://example.org/a/../b', 'spiffe://example.org/w?q', `${ID}/`, 'spiffe://example.org/tessera/control-plane', '') }, { weight: 1, arbitrary: anyJson }),
    aud: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(AUDIENCE, [AUDIENCE], ['x', AUDIENCE]) }, { weight: 1, arbitrary: fc.constantFrom([], 'svc-b', [AUDIENCE, 1], `${AUDIENCE} `) }, { weight: 1, arbitrary: anyJson }),
    exp: dateLike,
    nbf: dateLike,
    iat: dateLike,
  },
  { requiredKeys: ['sub', 'aud', 'exp'] },
);

/** Text mutations of a token: a character changed, inserted or removed, the token cut, parts swapped or added. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), ch: fc.constantFrom('A', 'a', '_', '-', '.', '=', '+', '/', ' ', '\u00e9', '0') }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), ch: fc.constantFrom('A', '.', '=', '\n') }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const) }),
  fc.record({ kind: fc.constant('extra' as const) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(token: string, m: Mutation): string {
  const at = 'at' in m ? m.at % (token.length + 1) : 0;
  switch (m.kind) {
    case 'set':
      return token.slice(0, at) + m.ch + token.slice(at + 1);
    case 'insert':
      return token.slice(0, at) + m.ch + token.slice(at);
    case 'remove':
      return token.slice(0, at) + token.slice(at + 1);
    case 'cut':
      return token.slice(0, at);
    case 'swap': {
      const [h, c, s] = token.split('.');
      return `${c}.${h}.${s}`;
    }
    case 'extra':
      return `${token}.${token.split('.')[0]}`;
  }
}

describe('JWT-SVID validation of generated and mutated tokens', () => {
  test('the generators reach acceptance and most refusals (not vacuous)', () => {
    const seen = new Set<string>();
    for (const [h, c] of fc.sample(fc.tuple(header, claims), { seed: 3, numRuns: 600 })) {
      const o = outcome(signed(h, c));
      seen.add('accepted' in o ? 'accepted' : o.refused);
    }
    for (const kind of ['accepted', 'TESSERA_ERR_JWT_SVID_ALG_NOT_ALLOWED', 'TESSERA_ERR_JWT_SVID_MALFORMED', 'TESSERA_ERR_JWT_SVID_BAD_SUBJECT', 'TESSERA_ERR_JWT_SVID_UNKNOWN_KEY', 'TESSERA_ERR_JWT_SVID_NO_BUNDLE', 'TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE', 'TESSERA_ERR_JWT_SVID_NO_AUDIENCE', 'TESSERA_ERR_JWT_SVID_EXPIRED', 'TESSERA_ERR_JWT_SVID_NOT_YET_VALID']) {
      expect(seen, kind).toContain(kind);
    }
  });

  test('signed tokens with generated header and claims: accepted only when lawful, else a JWT-SVID refusal', () => {
    fc.assert(
      fc.property(header, claims, (h, c) => {
        const o = outcome(signed(h, c));
        if ('accepted' in o) expectLawful(o.accepted, h, c);
      }),
      fuzzParams(0x1a7_5e1, 500),
    );
  }, fuzzTimeoutMs());

  test('mutated valid tokens: a JWT-SVID refusal, or accepted only when they decode to the same token', () => {
    const original = signJwtSvid({ privateKey: ec.privateKey, keyId: 'k1', spiffeId: ID, audience: [AUDIENCE], issuedAtMs: NOW, expiresAtMs: NOW + 300_000 });
    const same = (t: string) => {
      const a = decodeJwt(original);
      const b = decodeJwt(t);
      return a.signingInput === b.signingInput && a.signature.equals(b.signature);
    };
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        const token = ms.reduce(mutate, original);
        const o = outcome(token);
        // base64url's last character carries spare bits: a change there may decode to the same bytes.
        if ('accepted' in o) expect(same(token)).toBe(true);
      }),
      fuzzParams(0x1a7_5e2, 500),
    );
  }, fuzzTimeoutMs());
});
