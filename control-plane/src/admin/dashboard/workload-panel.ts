// The dashboard's workload panel: the live SVIDs of the inventory folded into renewal chains. A renewal records
// the SVID it renewed (attestedAs "x509svid:<serial>"), so the newest SVID of each chain is what one running
// workload holds now; older live SVIDs of the chain are counted, not listed. Two replicas of one SPIFFE ID are
// two chains, hence two rows.
import { canonicalSerial } from '../../../../common/pki/serial.js';
import type { IssuedSvidRow } from '../../store/store-contract.js';

export interface WorkloadRow {
  readonly spiffeId: string;
  readonly serial: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly issuedAtMs: number;
  /** As recorded: "join_token:…", "k8s_psat:…", "x509svid:<serial it renewed>", "self". */
  readonly attestedAs: string;
  readonly authorityId: string;
  /** attest | renew | self */
  readonly kind: string;
  /** Older SVIDs of the same chain that are still live (superseded, not yet expired). */
  readonly superseded: number;
}

const RENEWED = 'x509svid:';

/** The serial a renewal renewed, canonical; undefined for a first attestation. */
export function renewedSerial(row: Pick<IssuedSvidRow, 'attestedAs'>): string | undefined {
  return row.attestedAs.startsWith(RENEWED) ? canonicalSerial(row.attestedAs.slice(RENEWED.length)) : undefined;
}

/** Live SVIDs by canonical serial, and for each the newest live SVID that renewed it. */
export class SvidChains {
  readonly bySerial = new Map<string, IssuedSvidRow>();
  readonly #child = new Map<string, IssuedSvidRow>();

  constructor(rows: readonly IssuedSvidRow[]) {
    for (const r of rows) this.bySerial.set(canonicalSerial(r.serial) ?? r.serial, r);
    for (const r of rows) {
      const parent = renewedSerial(r);
      if (parent === undefined) continue;
      const seen = this.#child.get(parent);
      if (!seen || seen.issuedAtMs < r.issuedAtMs) this.#child.set(parent, r);
    }
  }

  /** The SVID that renewed `serial`, if one is live. */
  childOf(serial: string): IssuedSvidRow | undefined {
    return this.#child.get(serial);
  }

  /** The newest live SVID of `serial`'s chain (itself when nothing renewed it); bounded by the rows. */
  headOf(serial: string): string {
    let cur = serial;
    for (let i = 0; i <= this.bySerial.size; i++) {
      const next = this.#child.get(cur);
      if (!next) return cur;
      cur = canonicalSerial(next.serial) ?? next.serial;
    }
    return cur;
  }

  /** Live SVIDs older than `serial` in its chain. */
  depthOf(serial: string): number {
    let n = 0;
    let cur = this.bySerial.get(serial);
    for (; cur && n <= this.bySerial.size; n++) {
      const parent = renewedSerial(cur);
      cur = parent === undefined ? undefined : this.bySerial.get(parent);
    }
    return Math.max(0, n - 1);
  }
}

/**
 * One row per chain head, by SPIFFE ID then newest first. The control plane's own SVIDs are all "self" (it renews
 * without a chain): only its newest is a head.
 */
export function workloadRows(chains: SvidChains): WorkloadRow[] {
  const newestSelf = new Map<string, IssuedSvidRow>();
  for (const r of chains.bySerial.values()) {
    if (r.kind !== 'self') continue;
    const seen = newestSelf.get(r.spiffeId);
    if (!seen || seen.issuedAtMs < r.issuedAtMs) newestSelf.set(r.spiffeId, r);
  }
  const rows: WorkloadRow[] = [];
  for (const [serial, r] of chains.bySerial) {
    if (chains.childOf(serial)) continue;
    let superseded = chains.depthOf(serial);
    if (r.kind === 'self') {
      if (newestSelf.get(r.spiffeId) !== r) continue;
      superseded = [...chains.bySerial.values()].filter((o) => o.kind === 'self' && o.spiffeId === r.spiffeId).length - 1;
    }
    rows.push({
      spiffeId: r.spiffeId,
      serial,
      notBeforeMs: r.notBeforeMs,
      notAfterMs: r.notAfterMs,
      issuedAtMs: r.issuedAtMs,
      attestedAs: r.attestedAs,
      authorityId: r.authorityId,
      kind: r.kind,
      superseded,
    });
  }
  return rows.sort((a, b) => (a.spiffeId < b.spiffeId ? -1 : a.spiffeId > b.spiffeId ? 1 : b.issuedAtMs - a.issuedAtMs));
}
