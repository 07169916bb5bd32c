// The certification path of a leaf: leaf → sent intermediates → one of the trust anchors. Built by name and key
// identifier first (X509Certificate.checkIssued: no signature is checked), and only a path that ends at an anchor has
// its signatures checked, from the anchor down, as OpenSSL's verifier does. A key is used to check a signature only
// once the certificate holding it is proven by the one above it, and after its RSA exponent passed the bound every key
// read is held to: a caller cannot make this verify with a key of its choosing (audit 56a F2: each sent intermediate's
// key checked the leaf's signature before anything else, ~9 ms for a 3,070-bit exponent, for anyone).
import type { X509Certificate } from 'node:crypto';
import { bitLength, rsaExponentWeakness } from '../pki/rsa-key-strength.js';

/** Certificates a path may hold below its anchor: the leaf and up to 7 intermediates. */
const MAX_DEPTH = 8;
/**
 * Issuer candidates looked at by name (X509Certificate.checkIssued, ~1 µs each), over the whole search: a path with
 * no branch looks at every authority and sent intermediate once per level, so the budget is that for the deepest
 * path plus room for branches (same-named authorities during a rotation). Fixed at 256, a bundle of 31 authorities
 * refused a valid 8-deep chain (audit 56d F1). Many same-named certificates would otherwise make the number of name
 * paths grow factorially; this bounds a hostile chain at a few thousand checks.
 */
const BRANCH_NAME_CHECKS = 256;

export type PathResult =
  | { ok: true; path: X509Certificate[] }
  | {
      ok: false;
      /** A signature on a path that reached an anchor did not verify. */
      badSignature: boolean;
      /** A proven intermediate on such a path is not a CA. */
      intermediateNotCa: boolean;
      /** A key on such a path may not be used to check a signature (why, naming the certificate), or null. */
      weakKey: string | null;
    };

/** One search: the verdicts reached so far (each signature is checked at most once), and what went wrong. */
interface Search {
  readonly intermediates: readonly X509Certificate[];
  readonly authorities: readonly X509Certificate[];
  /** child → issuer → whether child's signature verifies with the issuer's key. */
  readonly signed: Map<X509Certificate, Map<X509Certificate, boolean>>;
  readonly keyFaults: Map<X509Certificate, string | null>;
  readonly maxNameChecks: number;
  nameChecks: number;
  badSignature: boolean;
  intermediateNotCa: boolean;
  weakKey: string | null;
}

/** Builds a path leaf → intermediates → one of `authorities`, every signature on it checked from the anchor down. */
export function buildPath(leaf: X509Certificate, intermediates: readonly X509Certificate[], authorities: readonly X509Certificate[]): PathResult {
  const maxNameChecks = (authorities.length + intermediates.length) * MAX_DEPTH + BRANCH_NAME_CHECKS;
  const s: Search = { intermediates, authorities, signed: new Map(), keyFaults: new Map(), maxNameChecks, nameChecks: 0, badSignature: false, intermediateNotCa: false, weakKey: null };
  const path = search([leaf], s);
  return path ? { ok: true, path } : { ok: false, badSignature: s.badSignature, intermediateNotCa: s.intermediateNotCa, weakKey: s.weakKey };
}

/** Depth first by name from the path's top; each path that reaches an anchor is proven before the search goes on. */
function search(path: X509Certificate[], s: Search): X509Certificate[] | null {
  const cur = path[path.length - 1]!;
  // Several authorities may share a subject during CA rotation: the one whose key signed is the path's end.
  for (const root of s.authorities) {
    if (!named(cur, root, s)) continue;
    const full = [...path, root];
    if (proven(full, s)) return full;
  }
  if (path.length >= MAX_DEPTH) return null;
  for (const cand of s.intermediates) {
    if (path.includes(cand) || !named(cur, cand, s) || s.signed.get(cur)?.get(cand) === false) continue;
    const found = search([...path, cand], s);
    if (found) return found;
  }
  return null;
}

/** Whether `issuer`'s name (and key identifier) is the one `child` names, within the search's budget. */
function named(child: X509Certificate, issuer: X509Certificate, s: Search): boolean {
  return s.nameChecks++ < s.maxNameChecks && child.checkIssued(issuer);
}

/**
 * Whether every signature on `path` (leaf first, anchor last) verifies, checked from the anchor down: each key is used
 * only once its certificate is proven by the one above it (the anchor's by configuration), is a CA's, and every key on
 * the path passed the exponent bound before the first check.
 */
function proven(path: readonly X509Certificate[], s: Search): boolean {
  for (let i = path.length - 1; i >= 1; i--) {
    const fault = keyFault(path[i]!, i === path.length - 1, s);
    if (fault) {
      s.weakKey ??= fault;
      return false;
    }
  }
  for (let i = path.length - 1; i >= 1; i--) {
    const issuer = path[i]!;
    const child = path[i - 1]!;
    if (i < path.length - 1 && !issuer.ca) {
      s.intermediateNotCa = true;
      return false;
    }
    if (!verified(child, issuer, s)) {
      s.badSignature = true;
      return false;
    }
  }
  return true;
}

/** Whether `child` is signed by `issuer`'s key; each pair is checked once per search. */
function verified(child: X509Certificate, issuer: X509Certificate, s: Search): boolean {
  const byIssuer = s.signed.get(child) ?? new Map<X509Certificate, boolean>();
  s.signed.set(child, byIssuer);
  const known = byIssuer.get(issuer);
  if (known !== undefined) return known;
  const ok = child.verify(issuer.publicKey);
  byIssuer.set(issuer, ok);
  return ok;
}

/** Why `cert`'s key may not check a signature, or null: an RSA exponent past the bound, or a key node:crypto cannot read. */
function keyFault(cert: X509Certificate, isAnchor: boolean, s: Search): string | null {
  const known = s.keyFaults.get(cert);
  if (known !== undefined) return known;
  let why: string | null;
  try {
    const e = cert.publicKey.asymmetricKeyDetails?.publicExponent;
    const large = e === undefined ? null : rsaExponentWeakness(bitLength(e));
    why = large ? `an RSA key with ${large}` : null;
  } catch {
    why = 'a key that cannot be read';
  }
  const fault = why && `${isAnchor ? 'trust anchor' : 'intermediate'} ${(cert.subject ?? '').replaceAll('\n', ', ')}: ${why}`;
  s.keyFaults.set(cert, fault);
  return fault;
}
