// X.509-SVID verification per the SPIFFE X509-SVID standard, against the bundle of the ID's own trust domain
// and an injected time. Returns the SPIFFE ID, or a reason for metrics plus a precise error code.
import { X509Certificate } from 'node:crypto';
import { type ErrorCode, ERROR_CATALOGUE } from '../errors.js';
import { DerError } from '../pki/der.js';
import { SpiffeId } from './spiffe-id.js';
import type { TrustBundle, TrustBundleSet } from './trust-bundle.js';
import { readCertFields } from './x509-fields.js';

/** The fixed set of failure reasons; used as a metric label, never sent to a peer. */
export type SvidFailureReason =
  | 'no_client_cert'
  | 'bad_svid'
  | 'unknown_ca'
  | 'wrong_trust_domain'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'id_mismatch';

export interface VerifiedSvid {
  readonly ok: true;
  readonly id: SpiffeId;
  readonly leaf: X509Certificate;
  /** Leaf first, ending with the bundle authority the chain verified to. */
  readonly path: readonly X509Certificate[];
  readonly notAfterMs: number;
}

export interface SvidFailure {
  readonly ok: false;
  readonly reason: SvidFailureReason;
  readonly code: ErrorCode;
  readonly message: string;
  /** The ID the leaf claims, when it could be read. */
  readonly claimedId?: SpiffeId;
}

export type SvidVerification = VerifiedSvid | SvidFailure;

const MAX_DEPTH = 8;

function fail(reason: SvidFailureReason, code: ErrorCode, detail?: string, claimedId?: SpiffeId): SvidFailure {
  const message = detail ? `${ERROR_CATALOGUE[code]} ${detail}` : ERROR_CATALOGUE[code];
  return claimedId ? { ok: false, reason, code, message, claimedId } : { ok: false, reason, code, message };
}

function toCerts(chain: readonly (X509Certificate | Uint8Array)[]): X509Certificate[] | null {
  try {
    return chain.map((c) => (c instanceof X509Certificate ? c : new X509Certificate(c)));
  } catch {
    return null;
  }
}

/** Reads the SPIFFE ID a leaf carries and checks the leaf-only SVID rules. */
export function leafSpiffeId(leaf: X509Certificate): { ok: true; id: SpiffeId } | SvidFailure {
  let fields: ReturnType<typeof readCertFields>;
  try {
    fields = readCertFields(leaf.raw);
  } catch (e) {
    if (e instanceof DerError) return fail('bad_svid', 'TESSERA_ERR_SVID_MALFORMED', e.message);
    throw e;
  }
  if (fields.uriSans.length === 0) return fail('bad_svid', 'TESSERA_ERR_SVID_NO_URI_SAN');
  if (fields.uriSans.length > 1) return fail('bad_svid', 'TESSERA_ERR_SVID_MULTIPLE_URI_SANS');
  const parsed = SpiffeId.tryParse(fields.uriSans[0]!);
  if (!parsed.ok) return fail('bad_svid', 'TESSERA_ERR_SVID_NOT_SPIFFE_ID', `(${parsed.error.code})`);
  const id = parsed.id;
  if (fields.isCa) return fail('bad_svid', 'TESSERA_ERR_SVID_LEAF_IS_CA', undefined, id);
  if (fields.keyUsage?.keyCertSign) return fail('bad_svid', 'TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN', undefined, id);
  if (fields.keyUsage?.cRLSign) return fail('bad_svid', 'TESSERA_ERR_SVID_LEAF_CRL_SIGN', undefined, id);
  if (!fields.keyUsage?.digitalSignature) return fail('bad_svid', 'TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE', undefined, id);
  return { ok: true, id };
}

type PathResult = { ok: true; path: X509Certificate[] } | { ok: false; badSignature: boolean; intermediateNotCa: boolean };

/** Builds a path leaf → intermediates → one authority of `bundle`, checking every signature. */
function buildPath(leaf: X509Certificate, intermediates: readonly X509Certificate[], bundle: TrustBundle): PathResult {
  const path = [leaf];
  let cur = leaf;
  let badSignature = false;
  let intermediateNotCa = false;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    // Several authorities may share a subject during CA rotation: accept the one whose key verifies.
    for (const root of bundle.authorities) {
      if (!cur.checkIssued(root)) continue;
      if (cur.verify(root.publicKey)) return { ok: true, path: [...path, root] };
      badSignature = true;
    }
    let next: X509Certificate | undefined;
    for (const cand of intermediates) {
      if (path.includes(cand) || !cur.checkIssued(cand)) continue;
      if (!cur.verify(cand.publicKey)) {
        badSignature = true;
        continue;
      }
      if (!cand.ca) {
        intermediateNotCa = true;
        continue;
      }
      next = cand;
      break;
    }
    if (!next) break;
    path.push(next);
    cur = next;
  }
  return { ok: false, badSignature, intermediateNotCa };
}

export interface VerifyOptions {
  /** Verification time, milliseconds since the epoch (from an injected Clock). */
  readonly nowMs: number;
  /** When set, a valid SVID with another ID fails with `id_mismatch`. */
  readonly expectedId?: SpiffeId;
}

export function verifyX509Svid(
  chain: readonly (X509Certificate | Uint8Array)[],
  bundles: TrustBundleSet,
  opts: VerifyOptions,
): SvidVerification {
  if (chain.length === 0) return fail('no_client_cert', 'TESSERA_ERR_SVID_EMPTY_CHAIN');
  const certs = toCerts(chain);
  if (!certs) return fail('bad_svid', 'TESSERA_ERR_SVID_MALFORMED');
  const leaf = certs[0]!;
  const idResult = leafSpiffeId(leaf);
  if (!idResult.ok) return idResult;
  const id = idResult.id;
  const intermediates = certs.slice(1);

  const own = bundles.get(id.trustDomain);
  const built = own ? buildPath(leaf, intermediates, own) : undefined;
  if (!built?.ok) {
    // No trust domain may mint IDs of another: if a foreign bundle verifies it, say so precisely.
    for (const other of bundles.bundles()) {
      if (other.trustDomain.equals(id.trustDomain)) continue;
      if (buildPath(leaf, intermediates, other).ok) {
        return fail('wrong_trust_domain', 'TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN', `(chains to "${other.trustDomain}", ID is in "${id.trustDomain}")`, id);
      }
    }
    if (!own) return fail('unknown_ca', 'TESSERA_ERR_SVID_NO_BUNDLE', `(trust domain "${id.trustDomain}")`, id);
    if (built?.intermediateNotCa) return fail('bad_svid', 'TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA', undefined, id);
    if (built?.badSignature) return fail('bad_signature', 'TESSERA_ERR_SVID_BAD_SIGNATURE', undefined, id);
    return fail('unknown_ca', 'TESSERA_ERR_SVID_UNKNOWN_CA', undefined, id);
  }

  for (const cert of built.path) {
    if (opts.nowMs < cert.validFromDate.getTime()) {
      return fail('not_yet_valid', 'TESSERA_ERR_SVID_NOT_YET_VALID', `(${cert === leaf ? 'leaf' : 'issuer'} valid from ${cert.validFromDate.toISOString()})`, id);
    }
    if (opts.nowMs > cert.validToDate.getTime()) {
      return fail('expired', 'TESSERA_ERR_SVID_EXPIRED', `(${cert === leaf ? 'leaf' : 'issuer'} expired ${cert.validToDate.toISOString()})`, id);
    }
  }
  if (opts.expectedId && !opts.expectedId.equals(id)) {
    return fail('id_mismatch', 'TESSERA_ERR_SVID_ID_MISMATCH', `(got "${id}", want "${opts.expectedId}")`, id);
  }
  return { ok: true, id, leaf, path: built.path, notAfterMs: leaf.validToDate.getTime() };
}
