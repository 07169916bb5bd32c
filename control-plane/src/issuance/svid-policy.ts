// The pure rules of issuance: what a CSR may ask for given the attested ID, which IDs may be issued at all,
// and the validity window (TTL from config, capped by maxTtl and by the intermediate; NotBefore backdated).
import { TesseraError } from '../../../common/errors.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { CheckedCsr } from './csr-reader.js';

/** The path of the control plane's own SPIFFE ID; no caller can be issued it. */
export const CONTROL_PLANE_PATH = '/tessera/control-plane';

export function controlPlaneIdString(td: TrustDomain): string {
  return `${td.idString()}${CONTROL_PLANE_PATH}`;
}

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

/** Refuses IDs of another trust domain and the control plane's own ID. */
export function checkIssuableId(id: SpiffeId, td: TrustDomain): void {
  if (!id.memberOf(td)) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', `${id} is not in trust domain ${td.name}`);
  if (id.path === CONTROL_PLANE_PATH) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', `${id} is the control plane's own ID`);
}

export interface ValidityInput {
  readonly nowMs: number;
  readonly ttlMs: number;
  readonly maxTtlMs: number;
  readonly backdateMs: number;
  /** A lifetime the caller asked for (0 = the configured ttl); capped by maxTtl like the ttl. */
  readonly requestedTtlMs: number;
  readonly issuerNotBeforeMs: number;
  readonly issuerNotAfterMs: number;
}

/** Whole seconds (X.509 times have no fractions); NotAfter never past the intermediate, NotBefore never before it. */
export function svidValidity(v: ValidityInput): { notBeforeMs: number; notAfterMs: number } {
  const ttl = Math.min(v.requestedTtlMs > 0 ? v.requestedTtlMs : v.ttlMs, v.maxTtlMs);
  const notBeforeMs = Math.ceil(Math.max(v.nowMs - v.backdateMs, v.issuerNotBeforeMs) / 1000) * 1000;
  const notAfterMs = Math.floor(Math.min(v.nowMs + ttl, v.issuerNotAfterMs) / 1000) * 1000;
  if (notAfterMs <= v.nowMs) throw new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL', 'the signing intermediate expires too soon to issue anything');
  return { notBeforeMs, notAfterMs };
}
