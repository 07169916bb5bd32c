// What the control plane remembers, as one asynchronous contract with two implementations: the embedded SQLite
// file (one process, the zero-setup default) and PostgreSQL (any number of replicas on one database). Every method
// that touches shared state returns a Promise, so the same callers work against a local file and a network
// database; single-use and compare-and-swap rules are enforced by the database, never by a read-then-write here.
import type { BreakGlassGrant } from '../../../common/policy/policy-types.js';
import type { LoadedSession, StoredSession } from '../discovery/service-registry.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface TokenRecord {
  readonly hash: string;
  readonly spiffeId: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly usedAtMs: number | null;
  readonly revokedAtMs: number | null;
}

/** Join tokens, stored only as SHA-256 hashes; one is spent only with the SVID it pays for (InventoryStore.recordWithToken). */
export interface TokenStore {
  create(token: string, spiffeId: string, nowMs: number, ttlMs: number): Promise<TokenRecord>;
  find(hash: string): Promise<TokenRecord | undefined>;
  /** The tokens whose hash starts with `prefix` (lower-case hex); at most two, enough to tell ambiguity. */
  findByPrefix(prefix: string): Promise<TokenRecord[]>;
  /** Marks an unused token revoked; false when it was used or revoked already. */
  revoke(hash: string, nowMs: number): Promise<boolean>;
  /** Forgets tokens expired for longer than `keepMs`. */
  prune(nowMs: number, keepMs: number): Promise<number>;
}

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
  /**
   * Who this SVID's chain of renewals belongs to: the instance its attestation proved when the attestor names one
   * (`pod:<uid>` for a Kubernetes token, `tpm:<hash>` for a TPM), else the serial that began the chain (the
   * attested SVID's own; itself for one attested). One pod's SVIDs share it, so a rate limit keyed by it is that
   * pod's alone. Absent on rows from before it was recorded.
   */
  readonly lineage?: string;
  /**
   * The renewal tree this SVID belongs to, named by the serial it grew from (the attested SVID's own; for a renewal of
   * an SVID recorded without one, or not recorded here, that SVID's serial), and how many renewals it is below that
   * serial: every SVID renewed from this one, transitively, has the same chain and a greater depth. A serial ban reads
   * the live SVIDs renewed from a serial by them (InventoryStore.liveInChain), in one read with no row between needed.
   * Absent on rows from before they were recorded.
   */
  readonly chain?: string;
  readonly depth?: number;
  /** Peer address of the caller. */
  readonly caller: string;
}

/** Where a page of live SVIDs ended: the last row's expiry and serial (InventoryStore.livePage). */
export interface LiveCursor {
  readonly notAfterMs: number;
  readonly serial: string;
}

/**
 * Every SVID issued, until `inventory.keep` after it expired: answers `tessera certs list`, "does a live SVID still
 * chain to this authority", a renewal's lineage and which live SVIDs were renewed from a banned serial.
 */
export interface InventoryStore {
  find(serial: string): Promise<IssuedSvidRow | undefined>;
  /**
   * The SVIDs issued as renewals of this one (attestedAs `x509svid:<serial>`), any replica's: the links a serial ban
   * follows from a row recorded without a chain.
   */
  renewalsOf(serial: string): Promise<IssuedSvidRow[]>;
  /**
   * The SVIDs of renewal tree `chain` deeper than `depth` and unexpired at `nowMs`, shallowest first, at most `limit`:
   * every live SVID renewed, transitively, from the one at `depth` (and any of a second branch of the tree below it).
   */
  liveInChain(chain: string, depth: number, nowMs: number, limit: number): Promise<IssuedSvidRow[]>;
  record(r: IssuedSvidRow): Promise<void>;
  /**
   * Records `r` and spends the join token `tokenHash` in one commit: both or neither, so a process killed at any
   * point leaves either a spent token with its SVID recorded or an unspent token. False, with nothing written, when
   * the token is used, revoked or expired at `nowMs` (by anyone, anywhere: one conditional update decides).
   */
  recordWithToken(r: IssuedSvidRow, tokenHash: string, nowMs: number): Promise<boolean>;
  /** Unexpired SVIDs at `nowMs`, optionally only those expiring within `withinMs`, soonest first. */
  live(nowMs: number, withinMs?: number, limit?: number): Promise<IssuedSvidRow[]>;
  /**
   * Like live() without a window, one page at a time: the unexpired SVIDs at `nowMs` that come after `after` in
   * (notAfterMs, serial) order (from the first when undefined), at most `limit`. Keyset paging: each page is one
   * short indexed read, so a reader of many rows can give the event loop back between pages.
   */
  livePage(nowMs: number, after: LiveCursor | undefined, limit: number): Promise<IssuedSvidRow[]>;
  /** Every SVID the inventory holds (newest first). */
  all(limit?: number): Promise<IssuedSvidRow[]>;
  /**
   * The unexpired SVIDs `authorityId` signed that keep it in the bundle: every kind but `self` (the control plane's
   * own, which moves to the active authority when the retired one goes: issuance/self-signer.ts).
   */
  liveByAuthority(authorityId: string, nowMs: number): Promise<{ count: number; latestNotAfterMs: number | null }>;
  /** Deletes at most `maxRows` rows expired at `cutoffMs` or before (one statement); returns how many went. */
  prune(cutoffMs: number, maxRows: number): Promise<number>;
  /**
   * Writes a row the size of an issuance's (PROBE_ROW) into the inventory's table and deletes it again: the write
   * the store's health probes with, so the table, its indexes and the journal need the room a real issuance needs.
   */
  probeWrite(): Promise<void>;
}

export interface AuditEvent {
  /** e.g. svid.issued, svid.refused, token.created, ca.activated, break_glass.opened, break_glass.expired. */
  readonly event: string;
  readonly result?: 'issued' | 'refused' | 'ok';
  readonly code?: string;
  readonly spiffeId?: string;
  readonly attestedAs?: string;
  readonly serial?: string;
  readonly notAfterMs?: number;
  /** Who asked: a peer address, "admin.sock", or "control-plane". */
  readonly caller?: string;
  readonly [extra: string]: unknown;
}

/**
 * The audit trail. record() appends the line to this process's local audit.log synchronously (it survives a kill -9
 * once record returns) and queues the shared row behind it, in order; flush() waits for the queued rows.
 */
export interface AuditLog {
  record(atMs: number, e: AuditEvent): void;
  /** The latest events whose name starts with `prefix`, newest first (from every replica). */
  recent(prefix: string, limit?: number): Promise<Record<string, unknown>[]>;
  flush(): Promise<void>;
  /**
   * Deletes at most `maxRows` of the oldest shared rows recorded before `beforeMs`; returns how many went. The local
   * audit.log is the operator's to rotate (it is reopened when renamed away).
   */
  prune(beforeMs: number, maxRows: number): Promise<number>;
}

/** Break-glass grants. */
export interface GrantStore {
  add(g: BreakGlassGrant): Promise<void>;
  active(nowMs: number): Promise<BreakGlassGrant[]>;
  /** Grants that expired and whose expiry was not audited yet. */
  expiredUnaudited(nowMs: number): Promise<BreakGlassGrant[]>;
  /** True for the one caller (of any replica) that marked it: only that one audits the expiry. */
  markExpiryAudited(id: string): Promise<boolean>;
}

/** Small persistent values and counters shared by every replica. */
export interface MetaStore {
  get(key: string): Promise<string | undefined>;
  /** Adds one to an integer counter atomically (across replicas) and returns the new value. */
  increment(key: string): Promise<number>;
  /** Sets a value once: the first writer's value stays (across replicas), and every caller gets the stored one. */
  claim(key: string, value: string): Promise<string>;
}

export type BanKind = 'spiffe_id' | 'serial';

export interface Ban {
  readonly kind: BanKind;
  /** The SPIFFE ID, or the canonical serial (common/pki/serial.ts). */
  readonly value: string;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAtMs: number;
  /** Serial bans: the SVID's NotAfter when the inventory knows it. */
  readonly notAfterMs: number | null;
}

/** Operator bans of SPIFFE IDs and SVID serials. */
export interface RevocationStore {
  /** False when the same ban exists already. */
  add(b: Ban): Promise<boolean>;
  remove(kind: BanKind, value: string): Promise<boolean>;
  find(kind: BanKind, value: string): Promise<Ban | undefined>;
  all(): Promise<Ban[]>;
  /** Bans still worth enforcing at `nowMs`. */
  live(nowMs: number): Promise<Ban[]>;
  /**
   * The bans on `spiffeId` or on `serial` (canonical), read from the database now: what every replica has committed,
   * including a ban whose announcement has not reached this replica yet.
   */
  matching(spiffeId: string, serial: string | undefined): Promise<Ban[]>;
}

/**
 * Self-registrations of the service registry, per Register session. Each session is owned by the replica that holds
 * its call, which refreshes its heartbeat (`updated_at_ms`); a session whose heartbeat lapsed (its replica died) is
 * removed by whichever replica sweeps first.
 */
export interface RegistrationStore {
  /** Replaces what is stored for the session with its current set, owned by `owner`, heartbeat `atMs`, atomically. */
  save(s: StoredSession, atMs: number, owner: string): Promise<void>;
  remove(sessionId: string): Promise<void>;
  /** Every stored session, with its owner and last heartbeat. */
  loadAll(): Promise<LoadedSession[]>;
  /**
   * Sets the heartbeat of those of `sessionIds` that `owner` stores to `atMs`, in one statement; returns the ids it
   * found (one missing was removed meanwhile, e.g. swept while this replica could not reach the store).
   */
  heartbeat(owner: string, sessionIds: readonly string[], atMs: number): Promise<string[]>;
  /** Deletes every session whose heartbeat is older than `beforeMs`, in one statement (idempotent across replicas); returns how many went. */
  removeStale(beforeMs: number): Promise<number>;
}

/** What one proxy last reported about itself: the SVID each listener serves, and its authorization denials. */
export interface ProxyReport {
  /** The proxy's SPIFFE ID, proved by the SVID it called with. */
  readonly spiffeId: string;
  /** Stable per proxy process (host/pod name and pid), so two replicas of one workload stay apart. */
  readonly instance: string;
  readonly served: readonly { readonly listener: string; readonly serial: string; readonly notAfterMs: number }[];
  /** When the proxy read what it serves (its clock). */
  readonly checkedAtMs: number;
  /** When a control-plane replica received the report (its clock), and which one. */
  readonly receivedAtMs: number;
  readonly replica: string;
  /** Denials since the proxy started, per policy and outcome ("deny", or "audit" for an audit-mode would-deny). */
  readonly denials: readonly { readonly policy: string; readonly outcome: 'deny' | 'audit'; readonly count: number; readonly lastAtMs: number; readonly lastCaller: string }[];
}

/** The latest report of every proxy (one row per spiffeId + instance, replaced on each report). */
export interface ReportStore {
  /**
   * Stores `r`; with `keepPerId`, the SPIFFE ID's other instances beyond its `keepPerId - 1` newest go (a new
   * instance replaces the oldest), so one workload holds at most that many rows however it names its instances.
   */
  put(r: ProxyReport, keepPerId?: number): Promise<void>;
  /**
   * Reports received at or after `sinceMs`, fair per SPIFFE ID: every ID's newest report, then every ID's second
   * newest, and so on (within one rank the smaller stored reports first, then the newest), so many IDs' many
   * instances cannot push a proxy's latest report out of the cut. At most `limit` rows, and no row once
   * `maxBytes` bytes of stored report text have been read (the first row is always read): the reader's cost is
   * bounded in bytes, not only in rows.
   */
  list(sinceMs: number, limit?: number, maxBytes?: number): Promise<ProxyReport[]>;
  /** Forgets reports older than `beforeMs`. */
  prune(beforeMs: number): Promise<number>;
}

/** The meta key holding the TPM nonce seal key (hex): one per database, so every replica seals alike. */
export const NONCE_SEAL_KEY = 'tpm.nonce_seal_key';

/**
 * TPM attestation's single-use nonces (docs/tpm-attestation.md), shared by every replica: the nonces spent, each
 * kept until it expires, and the HMAC key nonces are sealed with.
 */
export interface NonceStore {
  /** Records `id` as spent until `expiresAtMs` in one conditional INSERT; false when it was spent already (anywhere). */
  spendOnce(id: string, expiresAtMs: number): Promise<boolean>;
  /** Forgets nonces expired at `nowMs` (the seal refuses them anyway). */
  prune(nowMs: number): Promise<number>;
  /** The seal key: `candidate` is stored when the database has none yet (the first writer's stays); returns the stored one. */
  sealKey(candidate: Uint8Array): Promise<Buffer>;
}

/** Topics a replica announces after changing shared state, so the others reload it and republish. */
export type ChangeTopic = 'ca' | 'grants' | 'revocations' | 'registrations' | 'jwt';

/** In-process for SQLite; LISTEN/NOTIFY (plus a bounded poll) for PostgreSQL. */
export interface ChangeFeed {
  announce(topic: ChangeTopic): Promise<void>;
  /** Called for changes announced by any replica, this one included. Returns the unsubscribe function. */
  subscribe(topic: ChangeTopic, fn: () => void): () => void;
}

export interface ControlPlaneStore {
  readonly kind: StoreKind;
  readonly audit: AuditLog;
  readonly inventory: InventoryStore;
  readonly tokens: TokenStore;
  readonly grants: GrantStore;
  readonly meta: MetaStore;
  readonly revocations: RevocationStore;
  readonly registrations: RegistrationStore;
  readonly reports: ReportStore;
  readonly nonces: NonceStore;
  readonly changes: ChangeFeed;
  /** Flushes the audit queue, then closes the database (and its pool). */
  close(): Promise<void>;
}
