// X.509-SVID verification per the SPIFFE X509-SVID standard, against the bundle of the ID's own trust domain
// and an injected time. Returns the SPIFFE ID, or a reason for metrics plus a precise error code.
import { X509Certificate } from 'node:crypto';
import { type ErrorCode, errorMessage } from '../errors.js';
import { DerError } from '../pki/der.js';
import { SpiffeId } from './spiffe-id.js';
import type { TrustBundleSet } from './trust-bundle.js';
import { commonNamesOf } from '../pki/subject-names.js';
import { nameConstraintViolation } from './name-constraints.js';
import { type CertFields, type NameConstraints, readCertFields } from './x509-fields.js';
import { keyWeakness, signatureWeakness } from './x509-strength.js';
import { buildPath } from './x509-path.js';
import { isWorkloadId } from './workload-id.js';

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
  /** The window in which every certificate of the path is valid: a cached result holds only within it. */
  readonly notBeforeMs: number;
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

/**
 * What the peer's certificate is for. An SVID authenticates both ends of mTLS, so X509-SVID §4.4 asks both
 * purposes of an extendedKeyUsage ("When included, fields id-kp-serverAuth and id-kp-clientAuth MUST be set");
 * an edge client's certificate from a partner CA is a TLS client certificate only.
 */
/** What the leaf is for: an SVID (both TLS purposes), an edge client certificate, or a TPM attestation key (no TLS purpose). */
export type PeerUsage = 'svid' | 'client' | 'attestation';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const PURPOSES: Readonly<Record<PeerUsage, readonly string[]>> = { svid: [SERVER_AUTH, CLIENT_AUTH], client: [CLIENT_AUTH], attestation: [] };
const PURPOSE_NAMES: Readonly<Record<string, string>> = { [SERVER_AUTH]: 'serverAuth', [CLIENT_AUTH]: 'clientAuth' };

/** The purposes `eku` lacks for `usage` ('' when none is missing or the certificate has no extendedKeyUsage). */
function missingPurposes(eku: readonly string[] | null, usage: PeerUsage): string {
  if (eku === null) return '';
  return PURPOSES[usage]
    .filter((p) => !eku.includes(p))
    .map((p) => PURPOSE_NAMES[p])
    .join(' and ');
}

/** Signature algorithm and key of a certificate on the path: the same allow-lists for the leaf and its issuers. */
function strengthFailure(fields: CertFields, which: () => string, id?: SpiffeId): SvidFailure | null {
  const key = keyWeakness(fields.key);
  if (key) return fail('bad_svid', 'TESSERA_ERR_SVID_WEAK_KEY', `(${which()}: ${key})`, id);
  const sig = signatureWeakness(fields.signature);
  if (sig) return fail('bad_svid', 'TESSERA_ERR_SVID_WEAK_SIGNATURE', `(${which()} signed with ${sig})`, id);
  return null;
}

function fail(reason: SvidFailureReason, code: ErrorCode, detail?: string, claimedId?: SpiffeId): SvidFailure {
  const message = detail ? `${errorMessage(code)} ${detail}` : errorMessage(code);
  return claimedId ? { ok: false, reason, code, message, claimedId } : { ok: false, reason, code, message };
}

function toCerts(chain: readonly (X509Certificate | Uint8Array)[]): X509Certificate[] | null {
  try {
    return chain.map((c) => {
      if (c instanceof X509Certificate) return c;
      const cert = new X509Certificate(c);
      // OpenSSL reads a certificate with bytes after it or non-DER lengths as the one it re-encodes: only the
      // exact DER that was signed is a certificate here.
      if (!cert.raw.equals(c)) throw new DerError('not exactly one DER certificate');
      return cert;
    });
  } catch {
    return null;
  }
}

/**
 * The leaf rules every peer certificate meets, SVID or edge client: one set, read from DER. `usage` decides the
 * extendedKeyUsage a leaf that carries one must list.
 */
export function leafRuleFailure(fields: CertFields, id?: SpiffeId, usage: PeerUsage = 'svid'): SvidFailure | null {
  if (fields.unknownCritical.length > 0) return fail('bad_svid', 'TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION', `(${fields.unknownCritical.join(', ')})`, id);
  if (fields.uriSans.length > 1) return fail('bad_svid', 'TESSERA_ERR_SVID_MULTIPLE_URI_SANS', undefined, id);
  if (fields.isCa) return fail('bad_svid', 'TESSERA_ERR_SVID_LEAF_IS_CA', undefined, id);
  if (fields.keyUsage?.keyCertSign) return fail('bad_svid', 'TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN', undefined, id);
  if (fields.keyUsage?.cRLSign) return fail('bad_svid', 'TESSERA_ERR_SVID_LEAF_CRL_SIGN', undefined, id);
  if (!fields.keyUsage?.digitalSignature) return fail('bad_svid', 'TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE', undefined, id);
  const missing = missingPurposes(fields.extKeyUsage, usage);
  if (missing) return fail('bad_svid', 'TESSERA_ERR_SVID_BAD_EKU', `(the leaf's extendedKeyUsage lacks ${missing})`, id);
  return strengthFailure(fields, () => 'the leaf', id);
}

/** The DER fields of a certificate, or a bad_svid failure when they cannot be read. */
export function certFieldsOf(cert: X509Certificate): { ok: true; fields: CertFields } | SvidFailure {
  try {
    return { ok: true, fields: readCertFields(cert.raw) };
  } catch (e) {
    if (e instanceof DerError) return fail('bad_svid', 'TESSERA_ERR_SVID_MALFORMED', e.message);
    throw e;
  }
}

/** Reads the SPIFFE ID a leaf carries and checks the leaf-only SVID rules. */
export function leafSpiffeId(leaf: X509Certificate): { ok: true; id: SpiffeId } | SvidFailure {
  const read = certFieldsOf(leaf);
  if (!read.ok) return read;
  const fields = read.fields;
  if (fields.uriSans.length === 0) return fail('bad_svid', 'TESSERA_ERR_SVID_NO_URI_SAN');
  if (fields.uriSans.length > 1) return fail('bad_svid', 'TESSERA_ERR_SVID_MULTIPLE_URI_SANS');
  const parsed = SpiffeId.tryParse(fields.uriSans[0]!);
  if (!parsed.ok) return fail('bad_svid', 'TESSERA_ERR_SVID_NOT_SPIFFE_ID', `(${parsed.error.code})`);
  const id = parsed.id;
  if (!isWorkloadId(id)) return fail('bad_svid', 'TESSERA_ERR_SVID_NOT_WORKLOAD_ID', undefined, id);
  const broken = leafRuleFailure(fields, id);
  return broken ?? { ok: true, id };
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
  const built = own ? buildPath(leaf, intermediates, own.authorities) : undefined;
  if (!built?.ok) {
    // No trust domain may mint IDs of another: if a foreign bundle verifies it, say so precisely.
    for (const other of bundles.bundles()) {
      if (other.trustDomain.equals(id.trustDomain)) continue;
      if (buildPath(leaf, intermediates, other.authorities).ok) {
        return fail('wrong_trust_domain', 'TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN', `(chains to "${other.trustDomain}", ID is in "${id.trustDomain}")`, id);
      }
    }
    if (!own) return fail('unknown_ca', 'TESSERA_ERR_SVID_NO_BUNDLE', `(trust domain "${id.trustDomain}")`, id);
    // A key on the path that may not check a signature was refused before any was checked (x509-path.ts).
    if (built?.weakKey) return fail('bad_svid', 'TESSERA_ERR_SVID_WEAK_KEY', `(${built.weakKey})`, id);
    if (built?.intermediateNotCa) return fail('bad_svid', 'TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA', undefined, id);
    if (built?.badSignature) return fail('bad_signature', 'TESSERA_ERR_SVID_BAD_SIGNATURE', undefined, id);
    return fail('unknown_ca', 'TESSERA_ERR_SVID_UNKNOWN_CA', undefined, id);
  }

  const pathFailure = checkPath(certs, built.path, opts.nowMs, bundles, id);
  if (pathFailure) return pathFailure;
  if (opts.expectedId && !opts.expectedId.equals(id)) {
    return fail('id_mismatch', 'TESSERA_ERR_SVID_ID_MISMATCH', `(got "${id}", want "${opts.expectedId}")`, id);
  }
  return { ok: true, id, leaf, path: built.path, ...pathValidity(built.path) };
}

/**
 * When a verified path stays valid: from its latest NotBefore to its earliest NotAfter. An intermediate (or anchor)
 * that expires before the leaf ends the chain's validity there, for a result kept past the moment it was checked.
 */
export function pathValidity(path: readonly X509Certificate[]): { notBeforeMs: number; notAfterMs: number } {
  let notBeforeMs = Number.NEGATIVE_INFINITY;
  let notAfterMs = Number.POSITIVE_INFINITY;
  for (const c of path) {
    notBeforeMs = Math.max(notBeforeMs, c.validFromDate.getTime());
    notAfterMs = Math.min(notAfterMs, c.validToDate.getTime());
  }
  return { notBeforeMs, notAfterMs };
}

/**
 * The rules one CA certificate meets, whatever path it is on (pathLen depends on the path: checkPath): on an
 * intermediate no unknown critical extension and an accepted key and signature algorithm; on a trust anchor an
 * accepted key (its self-signature is not checked); on both an extendedKeyUsage, if any, that allows what the
 * leaf is used for. A CA certificate installed to sign SVIDs is held to the same: one answer for a certificate.
 */
export function caRuleFailure(f: CertFields, isAnchor: boolean, which: () => string, id?: SpiffeId, usage: PeerUsage = 'svid'): SvidFailure | null {
  if (!isAnchor) {
    if (f.unknownCritical.length > 0) return fail('bad_svid', 'TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION', `(${which()}: ${f.unknownCritical.join(', ')})`, id);
    const weak = strengthFailure(f, which, id);
    if (weak) return weak;
  } else {
    const key = keyWeakness(f.key, true);
    if (key) return fail('bad_svid', 'TESSERA_ERR_SVID_WEAK_KEY', `(${which()}: ${key})`, id);
  }
  // An issuer's extendedKeyUsage restricts what it certifies (OpenSSL, Go and NSS read it so; X509-SVID §4.4
  // warns that validators differ): a CA listing purposes must list the ones the leaf is used for.
  const missing = missingPurposes(f.extKeyUsage, usage);
  if (missing) return fail('bad_svid', 'TESSERA_ERR_SVID_BAD_EKU', `(${which()} restricts extendedKeyUsage and lacks ${missing})`, id);
  return null;
}

/**
 * A CA's name constraints hold for every certificate below it on the path: the leaf, and intermediates that are not
 * self-issued (RFC 5280 §6.1.3 (b)). Read only when some CA has constraints: most paths pay nothing.
 */
function nameConstraintFailure(path: readonly X509Certificate[], constrained: readonly { at: number; nc: NameConstraints; which: () => string }[], id?: SpiffeId): SvidFailure | null {
  const fields: CertFields[] = [];
  for (const c of constrained) {
    for (let j = 0; j < c.at; j++) {
      if (fields[j] === undefined) {
        const read = certFieldsOf(path[j]!);
        if (!read.ok) return read;
        fields[j] = read.fields;
      }
      const f = fields[j]!;
      if (j > 0 && f.selfIssued) continue;
      const why = nameConstraintViolation(c.nc, { uris: f.uriSans, dns: f.dnsSans, cns: j === 0 ? commonNamesOf(path[0]!) : [] });
      if (why) return fail('bad_svid', 'TESSERA_ERR_SVID_NAME_CONSTRAINTS', `(${c.which()}: ${why})`, id);
    }
  }
  return null;
}

/**
 * What holds for a built path, SVID or edge client (the leaf's own rules were checked with the leaf rules): every
 * certificate valid now; on each intermediate no unknown critical extension, an accepted key and signature
 * algorithm; on every CA certificate, trust anchor included, an accepted key, an extendedKeyUsage (if any) that
 * allows what the leaf is used for, and a pathLenConstraint and name constraints (if any) the path keeps to; and nothing sent that is
 * not on the path — an unrelated extra certificate is refused rather than ignored (trust anchors of `anchors`
 * excepted: TLS stacks append them). The anchor's own signature is not checked: RFC 5280 trusts an anchor for its
 * name and key, not for how it signed itself. OpenSSL holds the outbound side to the same (pathlen and purpose on
 * every CA, anchor included): one answer for a certificate in both directions.
 */
export function checkPath(sent: readonly X509Certificate[], path: readonly X509Certificate[], nowMs: number, anchors: TrustBundleSet | readonly X509Certificate[], id?: SpiffeId, usage: PeerUsage = 'svid'): SvidFailure | null {
  const leaf = path[0];
  for (const cert of path) {
    if (nowMs < cert.validFromDate.getTime()) {
      return fail('not_yet_valid', 'TESSERA_ERR_SVID_NOT_YET_VALID', `(${cert === leaf ? 'leaf' : 'issuer'} valid from ${cert.validFromDate.toISOString()})`, id);
    }
    if (nowMs > cert.validToDate.getTime()) {
      return fail('expired', 'TESSERA_ERR_SVID_EXPIRED', `(${cert === leaf ? 'leaf' : 'issuer'} expired ${cert.validToDate.toISOString()})`, id);
    }
  }
  // Non-self-issued intermediates between the CA being checked and the leaf (RFC 5280 §6.1.4 (l), (m)).
  let below = 0;
  const constrained: { at: number; nc: NameConstraints; which: () => string }[] = [];
  for (let i = 1; i < path.length; i++) {
    const cert = path[i]!;
    const isAnchor = i === path.length - 1;
    const read = certFieldsOf(cert);
    if (!read.ok) return read;
    const f = read.fields;
    // Named only in a refusal: node:crypto prints a subject anew each time it is read.
    const which = () => `${isAnchor ? 'trust anchor' : 'intermediate'} ${cert.subject.replaceAll('\n', ', ')}`;
    const broken = caRuleFailure(f, isAnchor, which, id, usage);
    if (broken) return broken;
    if (f.pathLen !== null && below > f.pathLen) {
      return fail('bad_svid', 'TESSERA_ERR_SVID_PATH_LENGTH', `(${which()} allows ${f.pathLen} intermediate CA(s) below it, the path has ${below})`, id);
    }
    if (!isAnchor && !f.selfIssued) below++;
    if (f.nameConstraints) constrained.push({ at: i, nc: f.nameConstraints, which });
  }
  const broken = constrained.length > 0 ? nameConstraintFailure(path, constrained, id) : null;
  if (broken) return broken;
  const onPath = new Set(path.map((c) => c.fingerprint256));
  const anchorList = Array.isArray(anchors) ? (anchors as readonly X509Certificate[]) : (anchors as TrustBundleSet).bundles().flatMap((b) => b.authorities);
  for (const a of anchorList) onPath.add(a.fingerprint256);
  if (sent.some((c) => !onPath.has(c.fingerprint256))) return fail('bad_svid', 'TESSERA_ERR_SVID_UNRELATED_CERT', undefined, id);
  return null;
}
