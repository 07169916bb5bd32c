// The inventory of issued SVIDs: who got which serial, from which authority, valid until when. Answers
// `tessera certs list` and "does any live SVID still chain to this authority".
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export interface IssuedSvidRow {
  readonly serial: string;
  readonly spiffeId: string;
  readonly authorityId: string;
  readonly intermediateSerial: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly issuedAtMs: number;
  /** e.g. "join_token:1a2b3c4d", "k8s_psat:ns/default/sa/web", "x509svid:<serial>", "self". */
  readonly attestedAs: string;
  /** attest | renew | self */
  readonly kind: string;
  /** Peer address of the caller. */
  readonly caller: string;
}

interface Row {
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
}

const fromRow = (r: Row): IssuedSvidRow => ({
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
});

export class InventoryStore {
  readonly #insert: StatementSync;
  readonly #live: StatementSync;
  readonly #liveByAuthority: StatementSync;
  readonly #list: StatementSync;
  readonly #bySerial: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare(
      `INSERT INTO issuances (serial, spiffe_id, authority_id, intermediate_serial, not_before_ms, not_after_ms, issued_at_ms, attested_as, kind, caller)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#live = db.prepare('SELECT * FROM issuances WHERE not_after_ms > ? AND not_after_ms <= ? ORDER BY not_after_ms, serial LIMIT ?');
    this.#liveByAuthority = db.prepare('SELECT count(*) AS n, max(not_after_ms) AS latest FROM issuances WHERE authority_id = ? AND not_after_ms > ?');
    this.#list = db.prepare('SELECT * FROM issuances ORDER BY issued_at_ms DESC, serial LIMIT ?');
    this.#bySerial = db.prepare('SELECT * FROM issuances WHERE serial = ?');
  }

  /** The SVID with this serial (lower-case hex as recorded), if this control plane issued it. */
  find(serial: string): IssuedSvidRow | undefined {
    const r = this.#bySerial.get(serial) as Row | undefined;
    return r && fromRow(r);
  }

  record(r: IssuedSvidRow): void {
    this.#insert.run(r.serial, r.spiffeId, r.authorityId, r.intermediateSerial, r.notBeforeMs, r.notAfterMs, r.issuedAtMs, r.attestedAs, r.kind, r.caller);
  }

  /** Unexpired SVIDs at `nowMs`, optionally only those expiring within `withinMs`, soonest first. */
  live(nowMs: number, withinMs?: number, limit = 10_000): IssuedSvidRow[] {
    const until = withinMs === undefined ? Number.MAX_SAFE_INTEGER : nowMs + withinMs;
    return (this.#live.all(nowMs, until, limit) as unknown as Row[]).map(fromRow);
  }

  /** Every SVID ever issued (newest first), for audits. */
  all(limit = 10_000): IssuedSvidRow[] {
    return (this.#list.all(limit) as unknown as Row[]).map(fromRow);
  }

  liveByAuthority(authorityId: string, nowMs: number): { count: number; latestNotAfterMs: number | null } {
    const r = this.#liveByAuthority.get(authorityId, nowMs) as { n: number; latest: number | null };
    return { count: r.n, latestNotAfterMs: r.latest };
  }
}
