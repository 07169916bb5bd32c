// The revocation deny-list a proxy enforces: an immutable snapshot of banned SPIFFE IDs and SVID serials (from
// Config/Watch) and the pure match of a verified peer against it. A files-identity proxy keeps the empty one.
import { canonicalSerial } from '../../../common/pki/serial.js';

export interface DenyList {
  readonly spiffeIds: ReadonlySet<string>;
  /** Canonical serials (common/pki/serial.ts). */
  readonly serials: ReadonlySet<string>;
}

/** Why a peer is refused: its SPIFFE ID is banned, or the serial of the leaf it presented. */
export type DenyMatch = 'spiffe_id' | 'serial';

/** What the matcher needs of a peer: its SPIFFE ID and its leaf's serial (any hex spelling). */
export interface DenyCandidate {
  readonly idText: string;
  readonly serial: string;
}

export const EMPTY_DENY_LIST: DenyList = Object.freeze({ spiffeIds: new Set<string>(), serials: new Set<string>() });

/** A frozen deny-list; serials that are not hex are dropped (they can match no certificate). */
export function createDenyList(spiffeIds: Iterable<string>, serials: Iterable<string>): DenyList {
  const ids = new Set(spiffeIds);
  const canon = new Set<string>();
  for (const s of serials) {
    const c = canonicalSerial(s);
    if (c) canon.add(c);
  }
  if (ids.size === 0 && canon.size === 0) return EMPTY_DENY_LIST;
  return Object.freeze({ spiffeIds: ids, serials: canon });
}

/** The match, or null when the peer is not banned. Costs two set lookups; nothing when the list is empty. */
export function deniedBy(list: DenyList, peer: DenyCandidate): DenyMatch | null {
  if (list === EMPTY_DENY_LIST) return null;
  if (list.spiffeIds.has(peer.idText)) return 'spiffe_id';
  if (list.serials.size > 0) {
    const s = canonicalSerial(peer.serial);
    if (s && list.serials.has(s)) return 'serial';
  }
  return null;
}

/** Same content: a snapshot that repeats the list changes nothing (no sweep of open connections). */
export function sameDenyList(a: DenyList, b: DenyList): boolean {
  if (a === b) return true;
  if (a.spiffeIds.size !== b.spiffeIds.size || a.serials.size !== b.serials.size) return false;
  for (const x of a.spiffeIds) if (!b.spiffeIds.has(x)) return false;
  for (const x of a.serials) if (!b.serials.has(x)) return false;
  return true;
}
