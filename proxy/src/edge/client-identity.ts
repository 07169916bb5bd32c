// Who an edge client is, from its certificate chain: verified by the same rules as every SVID peer (one set of
// leaf rules read from DER, a signed path to a `clientCa` authority, no unknown critical extension, the same key,
// signature, pathLen and extendedKeyUsage rules (clientAuth), no unrelated extra certificate), with its identity
// confined to what its CA may assert; and the x-forwarded-client-cert value the upstream receives for it (Envoy's
// grammar, every value quoted where it must be).
import type { X509Certificate } from 'node:crypto';
import { type ErrorCode, errorMessage } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { fingerprintOf, type TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { isWorkloadId } from '../../../common/spiffe/workload-id.js';
import { buildPath } from '../../../common/spiffe/x509-path.js';
import { type SvidFailure, type SvidFailureReason, certFieldsOf, checkPath, leafRuleFailure, pathValidity, verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import { printableAscii, xfccElement } from '../tls/xfcc.js';

export interface EdgeClient {
  /** A mesh ID only for a chain that verifies to the mesh bundle by the SVID rules; else an ID of clientTrustDomain, or null. */
  readonly spiffeId: SpiffeId | null;
  readonly subject: string;
  readonly hash: string;
  readonly dns: readonly string[];
  readonly notAfterMs: number;
  /** The leaf's serial (hex as node:crypto prints it), matched against the operator's deny-list. */
  readonly serial: string;
}

/** The SVID verifier's failure shape: the leaf and path checks here return its failures as they are. */
export type EdgeClientFailure = SvidFailure;

export interface EdgeClientTrust {
  /** The certificates of the listener's `clientCa` file. */
  readonly authorities: readonly X509Certificate[];
  /** The one trust domain this CA's clients may assert; null: they get no SPIFFE ID. */
  readonly clientTrustDomain: TrustDomain | null;
  /** The mesh's bundles (and so its trust domains), from the proxy's identity. */
  readonly mesh: TrustBundleSet;
  readonly ownTrustDomain: TrustDomain;
}

const HOST_NAME = /^[A-Za-z0-9*._-]{1,253}$/;

function refuse(reason: SvidFailureReason, code: ErrorCode, detail?: string): EdgeClientFailure {
  return { ok: false, reason, code, message: detail ? `${errorMessage(code)} ${detail}` : errorMessage(code) };
}

/** `path`: leaf first, ending with the anchor it verified to (its intermediates are worth remembering). */
export type EdgeClientVerdict = { readonly ok: true; readonly client: EdgeClient; readonly path: readonly X509Certificate[] } | EdgeClientFailure;

export function verifyEdgeClient(chain: readonly X509Certificate[], trust: EdgeClientTrust, nowMs: number): EdgeClientVerdict {
  const leaf = chain[0];
  if (!leaf) return refuse('no_client_cert', 'TESSERA_ERR_SVID_EMPTY_CHAIN');
  const read = certFieldsOf(leaf);
  if (!read.ok) return read;
  const fields = read.fields;
  // A partner's certificate is a TLS client certificate: its extendedKeyUsage, if any, needs clientAuth only.
  const broken = leafRuleFailure(fields, undefined, 'client');
  if (broken) return broken;
  const built = buildPath(leaf, chain.slice(1), trust.authorities);
  if (!built.ok) {
    if (built.weakKey) return refuse('bad_svid', 'TESSERA_ERR_SVID_WEAK_KEY', `(${built.weakKey})`);
    if (built.intermediateNotCa) return refuse('bad_svid', 'TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA');
    return built.badSignature ? refuse('bad_signature', 'TESSERA_ERR_SVID_BAD_SIGNATURE') : refuse('unknown_ca', 'TESSERA_ERR_SVID_UNKNOWN_CA');
  }
  // Node gives `undefined` (typed string) for an empty subject, which SVID-style client certificates may have.
  // Valid as long as every certificate of its path is: the cached client is used only until then.
  const base = { subject: printableAscii((leaf.subject ?? '').split('\n').join(',')), hash: fingerprintOf(leaf), notAfterMs: pathValidity(built.path).notAfterMs, serial: leaf.serialNumber.toLowerCase() };
  const anchor = built.path[built.path.length - 1]!;
  const meshAuthority = trust.mesh.bundles().some((b) => b.authorities.some((a) => a.fingerprint256 === anchor.fingerprint256));
  if (meshAuthority) {
    // The operator listed a mesh authority in clientCa: such a client is a mesh workload, checked as one.
    const r = verifyX509Svid(chain, trust.mesh, { nowMs });
    if (!r.ok) return r;
    return { ok: true, client: { ...base, spiffeId: r.id, dns: [] }, path: r.path };
  }
  const pathFailure = checkPath(chain, built.path, nowMs, trust.authorities, undefined, 'client');
  if (pathFailure) return pathFailure;
  const dns = fields.dnsSans.filter((d) => HOST_NAME.test(d));
  const uri = fields.uriSans[0];
  const path = built.path;
  if (uri === undefined || !uri.toLowerCase().startsWith('spiffe:')) return { ok: true, client: { ...base, spiffeId: null, dns }, path };
  const parsed = SpiffeId.tryParse(uri);
  if (!parsed.ok) return refuse('bad_svid', 'TESSERA_ERR_SVID_NOT_SPIFFE_ID', `(${parsed.error.code})`);
  const id = parsed.id;
  const td = id.trustDomain;
  // An outside CA never speaks for the mesh: a mesh trust domain is refused even if configured as the client's.
  const isMesh = td.equals(trust.ownTrustDomain) || trust.mesh.get(td) !== undefined;
  if (isMesh || (trust.clientTrustDomain && !td.equals(trust.clientTrustDomain))) {
    return refuse('wrong_trust_domain', 'TESSERA_ERR_EDGE_CLIENT_FOREIGN_ID', `(asserts "${td}")`);
  }
  if (!trust.clientTrustDomain) return { ok: true, client: { ...base, spiffeId: null, dns }, path };
  if (!isWorkloadId(id)) return refuse('bad_svid', 'TESSERA_ERR_SVID_NOT_WORKLOAD_ID');
  return { ok: true, client: { ...base, spiffeId: id, dns }, path };
}

/** Envoy's XFCC element for a verified edge client (tls/xfcc.ts, the one builder): By, Hash, Subject, URI, DNS. */
export function xfccFor(ownId: string, c: EdgeClient): string {
  return xfccElement({ by: ownId, hash: c.hash, subject: c.subject, ...(c.spiffeId ? { uri: c.spiffeId.toString() } : {}), dns: c.dns });
}
