// Revocation: the operator bans a SPIFFE ID or an SVID serial (validated, stored, audited, published to every
// proxy as the deny-list) or revokes an unused join token; issuance and Config/Watch ask check() before serving.
// check() answers from the bans held in memory (loaded at open, reloaded after each change here and when another
// replica announces one), so the hot paths never wait for the database. Signing asks checkStored() too, which reads
// the database: a ban committed on another replica holds here before its announcement arrives, so an SVID it bans
// cannot renew into a new, unbanned serial in that window. A serial ban reaches the live SVIDs renewed from it, and
// theirs (a thief who renewed before the ban holds one; renewal-reach.ts); a renewal whose origin is banned while it is
// signed is banned too.

import type { Clock } from '../../../common/clock.js';
import { hasControlCharacters, withoutControlCharacters } from '../../../common/text/control-characters.js';
import { TesseraError, describeError, isTesseraError } from '../../../common/errors.js';
import { canonicalSerial } from '../../../common/pki/serial.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { hashToken, tokenIdOf } from '../store/join-token.js';
import type { AuditLog, Ban, BanKind, InventoryStore, IssuedSvidRow, RevocationStore, TokenRecord, TokenStore } from '../store/store-contract.js';
import { ReloadedList } from '../store/reloaded-list.js';
import { reachRenewals } from './renewal-reach.js';
import { controlPlaneIdString } from './svid-policy.js';

export interface BanRequest {
  readonly kind: BanKind;
  /** A SPIFFE ID, or a serial in hex (any case, `:` separators allowed). */
  readonly value: string;
  readonly reason: string;
  readonly createdBy: string;
  /**
   * Ban a serial no SVID in the inventory has (an edge client's certificate from another clientCa, or an SVID issued
   * from a data dir this control plane no longer holds). Without it such a serial is refused: a cut or mistyped one
   * would ban nothing and look done.
   */
  readonly force?: boolean;
}

/** Exactly one of: the token itself, or its id (the hash prefix audit lines show as join_token:<id>). */
export interface TokenRevokeRequest {
  readonly token?: string;
  readonly tokenId?: string;
  readonly reason: string;
  readonly createdBy: string;
}

/** What proxies enforce: published in every Config/Watch snapshot. */
export interface DenyListInputs {
  readonly spiffeIds: readonly string[];
  readonly serials: readonly string[];
}

export interface RevocationsOptions {
  readonly store: RevocationStore;
  readonly tokens: TokenStore;
  readonly inventory: InventoryStore;
  readonly audit: AuditLog;
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  /** The deny-list changed (here or on another replica): publish a new snapshot. */
  readonly onChange: () => void;
  /** Called after a ban or lift here, so other replicas reload (absent: nobody else to tell). */
  readonly announce?: () => void;
  /** A reload that checkStored() started without waiting failed (the ban is still refused by its answer). */
  readonly onReloadFailed: (e: unknown) => void;
}

const MAX_REASON = 1000;

function invalid(message: string, field: string): TesseraError {
  return new TesseraError('TESSERA_ERR_REVOCATION_INVALID', message, { field });
}

function checkReason(reason: unknown): string {
  const r = typeof reason === 'string' ? reason.trim() : '';
  if (r.length > MAX_REASON) throw invalid(`the reason is longer than ${MAX_REASON} characters`, 'reason');
  if (hasControlCharacters(r)) throw invalid('the reason holds control characters', 'reason');
  return r;
}

/** Who asked, as the audit line records it (the CLI sends the local user name); control characters dropped. */
function operatorName(createdBy: unknown): string {
  return withoutControlCharacters(String(createdBy ?? '')).slice(0, 200) || 'unknown';
}

const idBanned = (spiffeId: string) => new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED', undefined, { spiffeId });
const unknownSerial = (serial: string) =>
  new TesseraError(
    'TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL',
    `no SVID in the inventory has serial ${serial}: give the whole serial as \`tessera certs list\` or a proxy's /certs print it (nothing was banned; an SVID expired longer than inventory.keep ago is forgotten: to cut off a workload whose old key may be compromised, ban its SPIFFE ID); --force bans a certificate this control plane did not issue (e.g. an edge client's from another clientCa)`,
    { serial },
  );
const serialBanned = (serial: string) => new TesseraError('TESSERA_ERR_REVOCATION_SERIAL_BANNED', undefined, { serial });

export class Revocations {
  readonly #o: RevocationsOptions;
  readonly #bans: ReloadedList<Ban>;
  #ids: ReadonlySet<string> = new Set();
  #serials: ReadonlySet<string> = new Set();

  private constructor(opts: RevocationsOptions) {
    this.#o = opts;
    this.#bans = new ReloadedList(
      () => opts.store.all(),
      (bans, first) => {
        this.#ids = new Set(bans.filter((b) => b.kind === 'spiffe_id').map((b) => b.value));
        this.#serials = new Set(bans.filter((b) => b.kind === 'serial').map((b) => b.value));
        if (!first) opts.onChange();
      },
    );
  }

  /** Loads the bans before anything asks check(). */
  static async open(opts: RevocationsOptions): Promise<Revocations> {
    const r = new Revocations(opts);
    await r.reload();
    return r;
  }

  /** Reads the bans again; a different set replaces the one in memory and is published. */
  reload(): Promise<void> {
    return this.#bans.reload();
  }

  /** After a change here: held in memory and published, then other replicas are told. */
  async #changed(): Promise<void> {
    try {
      await this.reload();
    } finally {
      this.#o.announce?.();
    }
  }

  /** The ban's value in its stored form, or TESSERA_ERR_REVOCATION_INVALID. */
  canonical(kind: BanKind, value: string): string {
    if (kind === 'serial') {
      const serial = typeof value === 'string' ? canonicalSerial(value) : undefined;
      if (!serial) throw invalid(`"${String(value).slice(0, 80)}" is not a certificate serial (hex, at most 20 bytes)`, 'serial');
      return serial;
    }
    const parsed = SpiffeId.tryParse(String(value));
    if (!parsed.ok) throw invalid(`"${String(value).slice(0, 80)}" is not a SPIFFE ID (${describeError(parsed.error)})`, 'spiffeId');
    const id = parsed.id.toString();
    // Banning the control plane's own ID would cut every proxy off the only place a ban can be lifted from.
    if (id === controlPlaneIdString(this.#o.trustDomain)) throw invalid(`${id} is the control plane's own ID and cannot be banned`, 'spiffeId');
    return id;
  }

  /**
   * Adds a ban (idempotent: an existing ban is returned unchanged) and publishes the deny-list. A serial ban also
   * bans every live SVID renewed from it, transitively (`renewals`): whoever held the banned key may have renewed.
   */
  async ban(req: BanRequest): Promise<{ ban: Ban; created: boolean; renewals: string[] }> {
    const value = this.canonical(req.kind, req.value);
    const reason = checkReason(req.reason);
    const now = this.#o.clock.nowMs();
    const issued = req.kind === 'serial' ? await this.#o.inventory.find(value) : undefined;
    if (req.kind === 'serial' && !issued && req.force !== true && !(await this.#o.store.find('serial', value))) throw unknownSerial(value);
    const ban: Ban = { kind: req.kind, value, reason, createdBy: operatorName(req.createdBy), createdAtMs: now, notAfterMs: issued?.notAfterMs ?? null };
    const created = await this.#o.store.add(ban);
    if (created) this.#audited(now, ban, issued);
    // Read after the ban is stored (also when it existed): a renewal recorded before the read is found here, one
    // recorded after it meets the stored ban in its own check after signing (Issuer.sign).
    const renewals = req.kind === 'serial' ? await this.#banRenewals(value, issued, ban.createdBy, now) : [];
    if (created || renewals.length > 0) await this.#changed();
    return { ban: created ? ban : ((await this.#o.store.find(req.kind, value)) ?? ban), created, renewals };
  }

  /**
   * After signing `serial` as a renewal of `origin`: refused (and `serial` banned) if `origin` or the ID was banned
   * meanwhile. The renewal's check before signing read the bans before such a ban was stored, and the ban's walk
   * of renewals may have read the inventory before this one was recorded: one of the two reads sees the other.
   */
  async checkRenewal(spiffeId: string, origin: string, serial: string): Promise<void> {
    try {
      await this.checkStored(spiffeId, origin);
    } catch (e) {
      // An ID ban covers the new serial already.
      if (!isTesseraError(e) || e.code !== 'TESSERA_ERR_REVOCATION_SERIAL_BANNED') throw e;
      const now = this.#o.clock.nowMs();
      const issued = await this.#o.inventory.find(serial);
      const ban: Ban = { kind: 'serial', value: serial, reason: `renewed from banned serial ${canonicalSerial(origin)}`, createdBy: 'control-plane', createdAtMs: now, notAfterMs: issued?.notAfterMs ?? null };
      if (await this.#o.store.add(ban)) {
        this.#audited(now, ban, issued);
        await this.#changed();
      }
      throw e;
    }
  }

  /**
   * Bans the live SVIDs renewed from `root`, transitively (renewal-reach.ts; `rootRow`: its inventory row, if any);
   * returns the serials newly banned. Each ban's reason names `root`, so lifting it names them.
   */
  async #banRenewals(root: string, rootRow: IssuedSvidRow | undefined, createdBy: string, now: number): Promise<string[]> {
    const banned: string[] = [];
    await reachRenewals(this.#o.inventory, root, rootRow, now, async (r) => {
      const ban: Ban = { kind: 'serial', value: r.serial, reason: `renewed from banned serial ${root}`, createdBy, createdAtMs: now, notAfterMs: r.notAfterMs };
      if (!(await this.#o.store.add(ban))) return;
      this.#audited(now, ban, r);
      banned.push(r.serial);
    });
    return banned;
  }

  #audited(now: number, ban: Ban, issued: IssuedSvidRow | undefined): void {
    this.#o.audit.record(now, {
      event: 'revocation.banned',
      result: 'ok',
      caller: ban.createdBy === 'control-plane' ? 'control-plane' : 'admin.sock',
      kind: ban.kind,
      ...(ban.kind === 'spiffe_id' ? { spiffeId: ban.value } : { serial: ban.value, ...(issued ? { spiffeId: issued.spiffeId, notAfterMs: issued.notAfterMs } : {}) }),
      reason: ban.reason,
      createdBy: ban.createdBy,
    });
  }

  /** Lifts a ban and publishes the deny-list without it; TESSERA_ERR_REVOCATION_NOT_FOUND when there was none. */
  async lift(kind: BanKind, rawValue: string, createdBy: string): Promise<Ban> {
    const value = this.canonical(kind, rawValue);
    const ban = await this.#o.store.find(kind, value);
    if (!ban || !(await this.#o.store.remove(kind, value))) throw new TesseraError('TESSERA_ERR_REVOCATION_NOT_FOUND', `no ban on ${kind === 'serial' ? `serial ${value}` : value}`);
    this.#o.audit.record(this.#o.clock.nowMs(), {
      event: 'revocation.lifted',
      result: 'ok',
      caller: 'admin.sock',
      kind,
      ...(kind === 'spiffe_id' ? { spiffeId: value } : { serial: value }),
      bannedAt: new Date(ban.createdAtMs).toISOString(),
      createdBy: operatorName(createdBy),
    });
    await this.#changed();
    return ban;
  }

  /** Revokes an unused join token, named by value or by id. */
  async revokeToken(req: TokenRevokeRequest): Promise<TokenRecord> {
    const rec = await this.#findToken(req);
    const reason = checkReason(req.reason);
    const now = this.#o.clock.nowMs();
    if (rec.revokedAtMs !== null) return rec;
    if (!(await this.#o.tokens.revoke(rec.hash, now))) {
      throw new TesseraError('TESSERA_ERR_REVOCATION_TOKEN_USED', `join token ${tokenIdOf(rec.hash)} was used at ${new Date(rec.usedAtMs ?? now).toISOString()}; ban ${rec.spiffeId} instead`);
    }
    this.#o.audit.record(now, {
      event: 'token.revoked',
      result: 'ok',
      caller: 'admin.sock',
      spiffeId: rec.spiffeId,
      attestedAs: `join_token:${tokenIdOf(rec.hash)}`,
      reason,
      createdBy: operatorName(req.createdBy),
    });
    return { ...rec, revokedAtMs: now };
  }

  /** Every ban, for `tessera revoke list` (read from the store: every replica's). */
  list(): Promise<Ban[]> {
    return this.#o.store.all();
  }

  /** The deny-list proxies enforce now (a serial ban past its SVID's NotAfter is not). */
  denyList(): DenyListInputs {
    const now = this.#o.clock.nowMs();
    const bans = this.#bans.items.filter((b) => b.notAfterMs === null || b.notAfterMs > now);
    return { spiffeIds: bans.filter((b) => b.kind === 'spiffe_id').map((b) => b.value), serials: bans.filter((b) => b.kind === 'serial').map((b) => b.value) };
  }

  /** Throws the ban's code when the ID or the presented SVID's serial is banned. */
  check(spiffeId: string, serial?: string): void {
    if (this.#ids.has(spiffeId)) throw idBanned(spiffeId);
    const s = serial === undefined ? undefined : canonicalSerial(serial);
    if (s && this.#serials.has(s)) throw serialBanned(s);
  }

  /**
   * check(), then the same question to the database (one read): every ban committed by any replica, so one whose
   * answer has returned is enforced here even before its announcement arrives. A ban found there but not in memory
   * is read into memory at once, so the deny-list follows too.
   */
  async checkStored(spiffeId: string, serial?: string): Promise<void> {
    this.check(spiffeId, serial);
    const s = serial === undefined ? undefined : canonicalSerial(serial);
    const bans = await this.#o.store.matching(spiffeId, s);
    if (bans.length === 0) return;
    this.reload().catch(this.#o.onReloadFailed);
    if (bans.some((b) => b.kind === 'spiffe_id' && b.value === spiffeId)) throw idBanned(spiffeId);
    if (s && bans.some((b) => b.kind === 'serial' && b.value === s)) throw serialBanned(s);
  }

  async #findToken(req: TokenRevokeRequest): Promise<TokenRecord> {
    if ((req.token === undefined) === (req.tokenId === undefined)) throw invalid('name the join token by exactly one of token or tokenId', 'token');
    if (req.token !== undefined) {
      const rec = typeof req.token === 'string' && req.token !== '' ? await this.#o.tokens.find(hashToken(req.token)) : undefined;
      if (!rec) throw new TesseraError('TESSERA_ERR_REVOCATION_NOT_FOUND', 'no join token with that value');
      return rec;
    }
    const id = String(req.tokenId).replace(/^join_token:/, '').toLowerCase();
    if (!/^[0-9a-f]{8,64}$/.test(id)) throw invalid('tokenId must be 8-64 hex digits (the id audit lines show as join_token:<id>)', 'tokenId');
    const found = await this.#o.tokens.findByPrefix(id);
    if (found.length === 0) throw new TesseraError('TESSERA_ERR_REVOCATION_NOT_FOUND', `no join token with id ${id}`);
    if (found.length > 1) throw invalid(`token id ${id} matches several tokens; give more digits or the token itself`, 'tokenId');
    return found[0]!;
  }
}
