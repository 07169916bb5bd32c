// When a CA's signing chain stops working: the earliest NotAfter on its way up to the trust anchor. An intermediate
// whose root expires first signs SVIDs nobody can verify from the root's date on, whatever its own NotAfter says
// (audit 38c F3), so every surface that tells when the CA stops working reads the date from here: issuance's cap,
// `ca status`, /certs, the expiry gauge, the dashboard, the renewal warnings and readiness. Also when a root is
// warned about before it ends.
import type { X509Certificate } from 'node:crypto';
import { pathValidity } from '../../../common/spiffe/x509-svid.js';

/** Whose NotAfter ends the chain: the intermediate's own, or its root's when that comes first. */
export type ChainEndsWith = 'intermediate' | 'root';

export interface ChainValidity {
  /** The latest NotBefore of the two. */
  readonly notBeforeMs: number;
  /** The earliest NotAfter of the two: nothing signed by the intermediate verifies past it. */
  readonly notAfterMs: number;
  readonly endsWith: ChainEndsWith;
}

export function chainValidity(intermediate: X509Certificate, root: X509Certificate): ChainValidity {
  const { notBeforeMs, notAfterMs } = pathValidity([intermediate, root]);
  return { notBeforeMs, notAfterMs, endsWith: root.validToDate.getTime() < intermediate.validToDate.getTime() ? 'root' : 'intermediate' };
}

/** The same from stored dates (ca-state.json's records, which the dashboard reads). */
export function chainNotAfterMs(intermediateNotAfterMs: number, rootNotAfterMs: number): number {
  return Math.min(intermediateNotAfterMs, rootNotAfterMs);
}

/**
 * Whether a signing chain is past half its life (an offline root's intermediate is warned about from there, where a
 * managed one would rotate): counted from the intermediate's own NotBefore to the chain's end.
 */
export function chainPastHalfLife(intermediate: X509Certificate, chain: ChainValidity, nowMs: number): boolean {
  const from = intermediate.validFromDate.getTime();
  return nowMs >= from + (chain.notAfterMs - from) / 2;
}

/** A root is warned about no earlier than this before it ends: a ten-year root is not warned about for five. */
export const ROOT_WARNING_LEAD_MS = 30 * 86_400_000;

/** From when a signing authority's root is warned about: half its life, or 30 days before it ends if that is later. */
export function rootWarningFromMs(root: X509Certificate): number {
  const from = root.validFromDate.getTime();
  const to = root.validToDate.getTime();
  return Math.max(from + (to - from) / 2, to - ROOT_WARNING_LEAD_MS);
}
