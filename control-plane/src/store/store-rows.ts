// The tables' rows as both implementations read them back (SQLite and PostgreSQL share column names and, with the
// pg driver's BIGINT parser, column types), and the contract's records they map to: one mapping per table.
import type { BreakGlassGrant } from '../../../common/policy/policy-types.js';
import type { Ban, BanKind, IssuedSvidRow, LiveCursor, TokenRecord } from './store-contract.js';

export interface TokenRow {
  hash: string;
  spiffe_id: string;
  created_at_ms: number;
  expires_at_ms: number;
  used_at_ms: number | null;
  revoked_at_ms: number | null;
}

export const tokenFromRow = (r: TokenRow): TokenRecord => ({ hash: r.hash, spiffeId: r.spiffe_id, createdAtMs: r.created_at_ms, expiresAtMs: r.expires_at_ms, usedAtMs: r.used_at_ms, revokedAtMs: r.revoked_at_ms });

export interface IssuanceRow {
  serial: string;
  spiffe_id: string;
  authority_id: string;
  intermediate_serial: string;
  not_before_ms: number;
  not_after_ms: number;
  issued_at_ms: number;
  attested_as: string;
  kind: string;
  caller: string;
  lineage?: string;
  /** '' and null on rows from before they were recorded. */
  chain?: string;
  depth?: number | null;
}

export const issuanceFromRow = (r: IssuanceRow): IssuedSvidRow => ({
  serial: r.serial,
  spiffeId: r.spiffe_id,
  authorityId: r.authority_id,
  intermediateSerial: r.intermediate_serial,
  notBeforeMs: r.not_before_ms,
  notAfterMs: r.not_after_ms,
  issuedAtMs: r.issued_at_ms,
  attestedAs: r.attested_as,
  kind: r.kind,
  caller: r.caller,
  ...(r.lineage ? { lineage: r.lineage } : {}),
  ...(r.chain && r.depth !== null && r.depth !== undefined ? { chain: r.chain, depth: r.depth } : {}),
});

export interface GrantRow {
  id: string;
  to_pattern: string;
  from_json: string;
  reason: string;
  created_by: string;
  created_at_ms: number;
  expires_at_ms: number;
}

export const grantFromRow = (r: GrantRow): BreakGlassGrant => ({
  id: r.id,
  to: r.to_pattern,
  from: JSON.parse(r.from_json) as string[],
  reason: r.reason,
  createdBy: r.created_by,
  createdAtMs: r.created_at_ms,
  expiresAtMs: r.expires_at_ms,
});

export interface BanRow {
  kind: BanKind;
  value: string;
  reason: string;
  created_by: string;
  created_at_ms: number;
  not_after_ms: number | null;
}

export const banFromRow = (r: BanRow): Ban => ({ kind: r.kind, value: r.value, reason: r.reason, createdBy: r.created_by, createdAtMs: r.created_at_ms, notAfterMs: r.not_after_ms });

/**
 * The row the store's health writes and deletes (InventoryStore.probeWrite), as both implementations insert it:
 * a real issuance's columns at a generous size (about 1 KiB, long text in every indexed column), so the probe needs
 * the pages and journal room an issuance needs. Its serial is no hex serial, and it expired at 0: nothing reads it
 * as an SVID in the moment it exists.
 */
export const PROBE_ROW: IssuedSvidRow = Object.freeze({
  serial: 'store-write-probe',
  spiffeId: `spiffe://write-probe.invalid/${'p'.repeat(480)}`,
  authorityId: 'write-probe'.padEnd(64, '0'),
  intermediateSerial: 'write-probe'.padEnd(40, '0'),
  notBeforeMs: 0,
  notAfterMs: 0,
  issuedAtMs: 0,
  attestedAs: `write-probe:${'p'.repeat(244)}`,
  kind: 'probe',
  lineage: 'write-probe'.padEnd(40, '0'),
  // A chain of its own, no SVID's; one left behind (a failed DELETE) expired at 0, and the prune removes it.
  chain: 'write-probe'.padEnd(40, '0'),
  depth: 0,
  caller: 'control-plane',
});

/**
 * InventoryStore.livePage's bounds, [lowest not_after_ms, cursor's not_after_ms, cursor's serial], for
 * `not_after_ms >= $1 AND (not_after_ms > $2 OR serial > $3)`: the first bound alone starts the index range (times
 * are whole ms), the rest skip the cursor's ties up to its serial.
 */
export function pageBounds(nowMs: number, after: LiveCursor | undefined): [number, number, string] {
  const live = Math.floor(nowMs) + 1;
  return after ? [Math.max(live, after.notAfterMs), after.notAfterMs, after.serial] : [live, live - 1, ''];
}
