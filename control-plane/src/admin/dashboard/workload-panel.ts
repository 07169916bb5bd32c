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

/**
 * Live SVIDs by canonical serial, and for each the newest live SVID that renewed it; fed a page at a time (add), in
 * any order: a renewal read before the SVID it renewed still links to it.
 */
export class SvidChains {
  readonly bySerial = new Map<string, IssuedSvidRow>();
  readonly #child = new Map<string, IssuedSvidRow>();
  /** The control plane's own SVIDs ("self", renewed without a chain): the newest and how many, per SPIFFE ID. */
  readonly #newestSelf = new Map<string, IssuedSvidRow>();
  readonly #selfCount = new Map<string, number>();

  constructor(rows: readonly IssuedSvidRow[] = []) {
    this.add(rows);
  }

  add(rows: readonly IssuedSvidRow[]): void {
    for (const r of rows) {
      this.bySerial.set(canonicalSerial(r.serial) ?? r.serial, r);
      if (r.kind === 'self') {
        const seen = this.#newestSelf.get(r.spiffeId);
        if (!seen || seen.issuedAtMs < r.issuedAtMs) this.#newestSelf.set(r.spiffeId, r);
        this.#selfCount.set(r.spiffeId, (this.#selfCount.get(r.spiffeId) ?? 0) + 1);
      }
      const parent = renewedSerial(r);
      if (parent === undefined) continue;
      const seen = this.#child.get(parent);
      if (!seen || seen.issuedAtMs < r.issuedAtMs) this.#child.set(parent, r);
    }
  }

  /**
   * The workload row of `serial` when it heads its chain (nothing live renewed it; for "self" SVIDs, the newest of
   * its SPIFFE ID), else undefined. Call once every page is added.
   */
  headRow(serial: string, r: IssuedSvidRow): WorkloadRow | undefined {
    if (this.#child.has(serial)) return undefined;
    let superseded: number;
    if (r.kind === 'self') {
      if (this.#newestSelf.get(r.spiffeId) !== r) return undefined;
      superseded = (this.#selfCount.get(r.spiffeId) ?? 1) - 1;
    } else superseded = this.depthOf(serial);
    return { spiffeId: r.spiffeId, serial, notBeforeMs: r.notBeforeMs, notAfterMs: r.notAfterMs, issuedAtMs: r.issuedAtMs, attestedAs: r.attestedAs, authorityId: r.authorityId, kind: r.kind, superseded };
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

/** The panel's order: by SPIFFE ID, then newest first, then by serial (a total order: rows read in slices sort alike). */
export function workloadOrder(a: WorkloadRow, b: WorkloadRow): number {
  return a.spiffeId < b.spiffeId ? -1 : a.spiffeId > b.spiffeId ? 1 : b.issuedAtMs - a.issuedAtMs || (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0);
}
