// Authorizers: small composable checks of a verified peer ID that return a reason, never a bare bool.
import type { SpiffeId } from './spiffe-id.js';
import type { TrustDomain } from './trust-domain.js';
import { compileIdPattern } from './match.js';

export type AuthorizeResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };
export type Authorizer = (id: SpiffeId) => AuthorizeResult;

const OK: AuthorizeResult = Object.freeze({ ok: true });
const deny = (reason: string): AuthorizeResult => Object.freeze({ ok: false, reason });

export const authorizeAny = (): Authorizer => () => OK;

export const authorizeId = (expected: SpiffeId): Authorizer => (id) =>
  id.equals(expected) ? OK : deny(`unexpected ID "${id}", want "${expected}"`);

export const authorizeOneOf = (...allowed: SpiffeId[]): Authorizer => (id) =>
  allowed.some((a) => a.equals(id)) ? OK : deny(`unexpected ID "${id}"`);

export const authorizeMemberOf = (td: TrustDomain): Authorizer => (id) =>
  id.memberOf(td) ? OK : deny(`ID "${id}" is not a member of trust domain "${td}"`);

/** Matches segment-wildcard patterns such as "spiffe://example.org/ns/*\/sa/web". */
export function authorizeMatching(...patterns: string[]): Authorizer {
  const compiled = patterns.map(compileIdPattern);
  return (id) => (compiled.some((p) => p.matches(id)) ? OK : deny(`ID "${id}" matches none of ${patterns.length} pattern(s)`));
}
