// The pure rules of issuance: what a CSR may ask for given the attested ID, which IDs may be issued at all,
// and the validity window (TTL from config, capped by maxTtl and by the signing chain; NotBefore backdated).
// A caller may ask for a shorter lifetime than svid.ttl, never a longer one: a workload cannot extend its own
// credential past what the operator set (svid.maxTtl bounds svid.ttl itself and the retire window), nor one shorter
// than twice svid.backdate (the floor the config puts on svid.ttl): it would be issued mostly or wholly in the past.
import { TesseraError } from '../../../common/errors.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { CheckedCsr } from './csr-reader.js';

// The ID rule lives in common/spiffe (one rule for tokens, issuance and peers); re-exported for the callers here.
export { CONTROL_PLANE_PATH, checkIssuableId, controlPlaneIdString } from '../../../common/spiffe/workload-id.js';

/** A CSR may ask for no SAN, or for exactly the attested ID as its one URI SAN; never for CA rights. */
export function checkCsrAgainstId(csr: CheckedCsr, id: SpiffeId): void {
  if (csr.requestsCa) throw new TesseraError('TESSERA_ERR_ISSUANCE_CSR_REQUESTS_CA');
  if (csr.sans.length === 0) return;
  const want = id.toString();
  if (csr.sans.length > 1 || csr.sans[0]!.type !== 'uri' || csr.sans[0]!.value !== want) {
    const asked = csr.sans.map((s) => `${s.type}:${s.value.slice(0, 200)}`).join(', ');
    throw new TesseraError('TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN', `the CSR asks for [${asked}]; only ${want} can be issued to this caller`);
  }
}

/** The shortest lifetime a caller may ask for, in backdates: the floor cp-config.ts puts on svid.ttl, by this constant (ttl >= 2 x backdate). */
export const MIN_TTL_BACKDATES = 2;

export interface ValidityInput {
  readonly nowMs: number;
  readonly ttlMs: number;
  readonly maxTtlMs: number;
  readonly backdateMs: number;
  /** A lifetime the caller asked for (0 = the configured ttl); capped at the configured ttl, raised to 2 x backdate. */
  readonly requestedTtlMs: number;
  /** The signing chain's validity: the intermediate's, narrowed by its root's (ca/chain-end.ts). */
  readonly issuerNotBeforeMs: number;
  readonly issuerNotAfterMs: number;
  /** Whose NotAfter issuerNotAfterMs is, for the refusal's message (default: the intermediate's). */
  readonly issuerEndsWith?: 'intermediate' | 'root';
}

/** Whole seconds (X.509 times have no fractions); NotAfter never past the chain's end, NotBefore never before its start. */
export function svidValidity(v: ValidityInput): { notBeforeMs: number; notAfterMs: number } {
  // ttl_seconds: 1 gave NotBefore = now - 60 s, NotAfter = now + 1 s, expired on arrival (audit 55c F5). Raised, not
  // refused, as a too-long or negative ask is capped: the caller gets the shortest SVID that is worth renewing.
  const asked = v.requestedTtlMs > 0 ? Math.max(v.requestedTtlMs, MIN_TTL_BACKDATES * v.backdateMs) : v.ttlMs;
  const ttl = Math.min(asked, v.ttlMs, v.maxTtlMs);
  const notBeforeMs = Math.ceil(Math.max(v.nowMs - v.backdateMs, v.issuerNotBeforeMs) / 1000) * 1000;
  const notAfterMs = Math.floor(Math.min(v.nowMs + ttl, v.issuerNotAfterMs) / 1000) * 1000;
  // An expired signer (an offline root's intermediate nobody renewed, or a root nobody replaced) fails closed with its own code.
  if (v.issuerNotAfterMs <= v.nowMs) {
    const at = new Date(v.issuerNotAfterMs).toISOString();
    throw new TesseraError(
      'TESSERA_ERR_CA_NO_INTERMEDIATE',
      v.issuerEndsWith === 'root'
        ? `the signing authority's root expired at ${at}: nothing chains to it any more, and nothing is issued until an authority with a live root is active (docs/offline-root.md#a-new-root)`
        : `the signing intermediate expired at ${at}; nothing is issued until a new one is installed`,
    );
  }
  if (notAfterMs <= v.nowMs) throw new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL', 'the signing intermediate expires too soon to issue anything');
  return { notBeforeMs, notAfterMs };
}
