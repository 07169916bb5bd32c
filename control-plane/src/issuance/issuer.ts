// Issuance: CSR checked → identity attested from the evidence alone → operator bans → CSR judged against it → rate
// limit → bans read from the database → SVID signed by the active authority → inventory (spending a join token in
// the same commit) → audit. Every refusal is audited with its stable code before it is thrown. TPM evidence is
// attested against the CSR's key (the quote binds it) and spends its nonce while attesting, so a replay is refused
// before it costs the ID's rate limit (a nonce is free: the next attempt asks a new challenge).
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { type AttestedIdentity, refusalAuditFields } from '../attestation/attested-identity.js';
import type { JoinTokenAttestor } from '../attestation/join-token-attestor.js';
import type { KubernetesAttestor } from '../attestation/k8s-attestation.js';
import type { SvidAttestor } from '../attestation/svid-attestor.js';
import type { TpmAttestor, TpmEvidence } from '../attestation/tpm-attestor.js';
import type { CaSnapshot, SigningAuthority } from '../ca/ca-manager.js';
import { signLeaf } from '../ca/leaf-signer.js';
import type { AuditEvent, AuditLog, InventoryStore, IssuedSvidRow } from '../store/store-contract.js';
import { type CheckedCsr, readCsr } from './csr-reader.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Revocations } from './revocations.js';
import { checkCsrAgainstId, checkIssuableId, svidValidity } from './svid-policy.js';

export type Evidence =
  | { readonly kind: 'join_token'; readonly token: string }
  | { readonly kind: 'k8s_sa_token'; readonly token: string }
  | { readonly kind: 'tpm'; readonly evidence: TpmEvidence }
  | { readonly kind: 'none' };

export interface SignRequest {
  readonly csrDer: Uint8Array;
  readonly evidence: Evidence;
  /** The caller's client certificate chain over mTLS (DER, leaf first), empty when it sent none. */
  readonly peerChain: readonly Uint8Array[];
  /** Peer address, for audit. */
  readonly caller: string;
  /** 0 = the configured ttl. */
  readonly requestedTtlMs: number;
  /**
   * True once the caller gave up (cancelled, or its deadline passed): nothing is committed for it then, so a join
   * token it sent stays usable for its retry (audit 40a F3). Absent: the caller never leaves.
   */
  readonly gone?: () => boolean;
}

export interface SignResult {
  /** Leaf, then the intermediate that signed it. */
  readonly chainDer: readonly Buffer[];
  readonly bundle: TrustBundle;
  readonly spiffeId: string;
  readonly notAfterMs: number;
  readonly serial: string;
}

export interface IssuanceMetrics {
  /** What an issuance is timed by: a sub-millisecond clock in production (the buckets start at 0.5 ms). */
  readonly clock: Clock;
  issued(attestor: string, seconds: number): void;
  refused(code: string, attestor: string): void;
}

export interface SvidSettings {
  readonly ttlMs: number;
  readonly maxTtlMs: number;
  readonly backdateMs: number;
}

export interface IssuerOptions {
  readonly trustDomain: TrustDomain;
  readonly ca: () => CaSnapshot;
  readonly svid: SvidSettings;
  readonly joinTokens?: JoinTokenAttestor;
  readonly kubernetes?: KubernetesAttestor;
  readonly tpm?: TpmAttestor;
  readonly svids: SvidAttestor;
  readonly limiter: RateLimiter;
  readonly inventory: InventoryStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly metrics?: IssuanceMetrics;
  /**
   * Operator bans: throws the ban's code when the attested ID or the presented SVID's serial is banned; check() from
   * memory, checkStored() from the database as well (asked right before signing), checkRenewal() after a renewal
   * was signed. Required: a composition that forgets it must not compile rather than issue to banned IDs.
   */
  readonly revocations: Pick<Revocations, 'check' | 'checkStored' | 'checkRenewal'>;
  /**
   * The RSA key rules (common/pki/rsa-key-strength.ts): why the CSR's key must not be certified, or null. Tens of
   * milliseconds of CPU a key, so the control plane's runs on a worker thread (RsaKeyVerdicts, urgent), never on the
   * event loop every caller shares. Required, like revocations: a composition must not forget the rules.
   */
  readonly keyWeakness: (key: KeyObject, gone?: () => boolean) => Promise<string | null>;
}

/** Where a new SVID sits among the inventory's renewal trees (IssuedSvidRow.chain, depth). */
interface ChainPlace {
  readonly chain: string;
  readonly depth: number;
}

/**
 * A renewal of `serial` (its row `parent`): one renewal deeper in the parent's tree. A parent recorded before trees
 * were, or not here, names a new tree one renewal below it (a ban of an old serial walks its renewal links into it).
 */
function renewalPlace(serial: string, parent: IssuedSvidRow | undefined): ChainPlace {
  return parent?.chain !== undefined && parent.depth !== undefined ? { chain: parent.chain, depth: parent.depth + 1 } : { chain: serial, depth: 1 };
}

/** What some issuances add: see #issue. */
interface IssueExtras {
  readonly lineage?: string | undefined;
  readonly joinTokenHash?: string | undefined;
  readonly gone?: (() => boolean) | undefined;
  readonly place?: ChainPlace | undefined;
  readonly signer?: SigningAuthority;
}

function attestorOf(e: Evidence): string {
  return e.kind === 'join_token' ? 'join_token' : e.kind === 'k8s_sa_token' ? 'k8s_psat' : e.kind === 'tpm' ? 'tpm' : 'x509svid';
}

export class Issuer {
  readonly #o: IssuerOptions;

  constructor(opts: IssuerOptions) {
    this.#o = opts;
  }

  /** The TPM attestor, for the TpmChallenge call; absent without attestors.tpm. */
  get tpm(): Pick<TpmAttestor, 'challenge'> | undefined {
    return this.#o.tpm;
  }

  async sign(req: SignRequest): Promise<SignResult> {
    const metrics = this.#o.metrics;
    const started = metrics?.clock.nowMs() ?? 0;
    let identity: AttestedIdentity | undefined;
    try {
      if (req.csrDer.length === 0) throw new TesseraError('TESSERA_ERR_ISSUANCE_BAD_REQUEST', 'the request carries no CSR');
      const csr = readCsr(req.csrDer);
      identity = await this.#attest(req, csr);
      this.#o.revocations.check(identity.spiffeId.toString(), identity.serial);
      checkIssuableId(identity.spiffeId, this.#o.trustDomain);
      checkCsrAgainstId(csr, identity.spiffeId);
      // One bucket per workload instance: a renewal draws from its chain's (the instance its attestation proved, or
      // the serial it began with), an attestation with reusable evidence from its instance's, other attestations from
      // the ID's. A pod renewing, or re-attesting with its token, in a loop starved its siblings and new pods.
      const renewed = identity.attestor === 'x509svid' ? identity.serial : undefined;
      // The renewed SVID's row (live, so never pruned): its lineage and its renewal tree carry on to the new one.
      const parent = renewed ? await this.#o.inventory.find(renewed) : undefined;
      const lineage = renewed ? parent?.lineage || renewed : identity.instance;
      if (!this.#o.limiter.take(lineage ? `${identity.spiffeId}#${lineage}` : identity.spiffeId.toString())) throw new TesseraError('TESSERA_ERR_ISSUANCE_RATE_LIMITED');
      // After attestation and the rate limit: these checks cost milliseconds, so only a known caller can ask for them.
      const weakness = await this.#o.keyWeakness(csr.publicKey, req.gone);
      if (weakness) throw new TesseraError('TESSERA_ERR_PKI_WEAK_KEY', `the CSR's RSA key has ${weakness}`);
      // Last, before signing: a ban committed on another replica may not be in this one's memory yet.
      await this.#o.revocations.checkStored(identity.spiffeId.toString(), identity.serial);
      const place = renewed ? renewalPlace(renewed, parent) : undefined;
      const result = await this.#issue(csr, identity.spiffeId, identity.attestedAs, req.evidence.kind === 'none' ? 'renew' : 'attest', req.caller, req.requestedTtlMs, { lineage, joinTokenHash: identity.joinTokenHash, gone: req.gone, place });
      // A renewal whose origin was banned while it was signed is banned itself and never handed out.
      if (renewed) await this.#o.revocations.checkRenewal(identity.spiffeId.toString(), renewed, result.serial);
      if (metrics) metrics.issued(identity.attestor, (metrics.clock.nowMs() - started) / 1000);
      return result;
    } catch (e) {
      const err = isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL', undefined, {}, { cause: e });
      const attestedAs = identity?.attestedAs ?? (typeof err.details['attestedAs'] === 'string' ? err.details['attestedAs'] : undefined);
      this.#refused({
        event: 'svid.refused',
        result: 'refused',
        code: err.code,
        caller: req.caller,
        attestor: identity?.attestor ?? attestorOf(req.evidence),
        ...(identity ? { spiffeId: identity.spiffeId.toString() } : {}),
        ...(attestedAs ? { attestedAs } : {}),
        // Why, and which SVID rule a refused renewal broke (e.g. TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION).
        ...refusalAuditFields(err.details),
      });
      this.#o.metrics?.refused(err.code, identity?.attestor ?? attestorOf(req.evidence));
      throw err;
    }
  }

  /** Audits a refusal; an audit log that cannot be written (a full disk) leaves the refusal's own code to the caller. */
  #refused(e: AuditEvent): void {
    try {
      this.#o.audit.record(this.#o.clock.nowMs(), e);
    } catch {
      // the store logged its failure (lifecycle/store-health.ts)
    }
  }

  /**
   * Signs the control plane's own SVID (no attestation: it is this process) with `signer`: the active chain, or a
   * retired one still in the bundle (self-signer.ts).
   */
  issueSelf(csr: CheckedCsr, id: SpiffeId, ttlMs: number, signer: SigningAuthority): Promise<SignResult> {
    return this.#issue(csr, id, 'self', 'self', 'control-plane', ttlMs, { signer });
  }

  async #attest(req: SignRequest, csr: CheckedCsr): Promise<AttestedIdentity> {
    const e = req.evidence;
    if (e.kind === 'join_token') {
      if (!this.#o.joinTokens) throw new TesseraError('TESSERA_ERR_ATTESTATION_DISABLED', 'join-token attestation is disabled');
      return this.#o.joinTokens.attest(e.token);
    }
    if (e.kind === 'k8s_sa_token') {
      if (!this.#o.kubernetes) throw new TesseraError('TESSERA_ERR_ATTESTATION_DISABLED', 'Kubernetes attestation is not configured');
      return this.#o.kubernetes.attest(e.token);
    }
    if (e.kind === 'tpm') {
      if (!this.#o.tpm) throw new TesseraError('TESSERA_ERR_ATTESTATION_DISABLED', 'TPM attestation is not configured');
      return this.#o.tpm.attest(e.evidence, csr.spkiDer);
    }
    return this.#o.svids.attest(req.peerChain);
  }

  /** The serial `serial`'s chain of renewals began with (itself when it was attested, or issued before this was kept). */
  async lineageOf(serial: string): Promise<string> {
    return (await this.#o.inventory.find(serial))?.lineage || serial;
  }

  /**
   * Signs, then records the SVID in the inventory before anyone holds it (so no live SVID goes uncounted).
   * `lineage`: the chain a renewal continues, or the instance an attestation proved; absent, the new SVID begins one.
   * `joinTokenHash`: the token is spent by the commit that records the SVID (signing first is local and cheap), so a
   * process killed before that commit leaves it usable; a token spent meanwhile discards the signed SVID.
   * `place`: a renewal's place in its renewal tree; absent, the new SVID begins a tree of its own.
   * `signer`: the chain that signs (the control plane's own SVID); absent, the active one.
   */
  async #issue(csr: CheckedCsr, id: SpiffeId, attestedAs: string, kind: string, caller: string, requestedTtlMs: number, more: IssueExtras = {}): Promise<SignResult> {
    const { lineage, joinTokenHash, gone, place } = more;
    const ca = this.#o.ca();
    const signer = more.signer ?? ca.signer;
    const now = this.#o.clock.nowMs();
    const { notBeforeMs, notAfterMs } = svidValidity({
      nowMs: now,
      ...this.#o.svid,
      requestedTtlMs,
      // The chain's validity (intermediate and root), not the intermediate's alone: no SVID outlives its root.
      issuerNotBeforeMs: signer.notBeforeMs,
      issuerNotAfterMs: signer.notAfterMs,
      issuerEndsWith: signer.endsWith,
    });
    const spiffeId = id.toString();
    const leaf = signLeaf(signer.issuer, { spiffeId, spkiDer: csr.spkiDer, keyAlgorithm: csr.algorithm, notBeforeMs, notAfterMs });
    const intermediateSerial = signer.intermediate.serialNumber.toLowerCase();
    const row = { serial: leaf.serialHex, spiffeId, authorityId: signer.authorityId, intermediateSerial, notBeforeMs, notAfterMs, issuedAtMs: now, attestedAs, kind, caller, lineage: lineage ?? leaf.serialHex, chain: place?.chain ?? leaf.serialHex, depth: place?.depth ?? 0 };
    // Asked right before the commit: a caller that left would never get this SVID, and its token would be spent on it.
    if (gone?.()) throw new TesseraError('TESSERA_ERR_ISSUANCE_CALLER_GONE');
    if (joinTokenHash === undefined) await this.#o.inventory.record(row);
    else if (!(await this.#o.inventory.recordWithToken(row, joinTokenHash, now))) {
      // Not spendable at the commit: used by another request, or revoked or expired while this one was in flight.
      throw new TesseraError((await this.#o.joinTokens?.whyUnspent(joinTokenHash, now)) ?? 'TESSERA_ERR_ATTESTATION_TOKEN_USED');
    }
    this.#o.audit.record(now, { event: 'svid.issued', result: 'issued', spiffeId, attestedAs, serial: leaf.serialHex, notAfterMs, caller, kind, authority: signer.authorityId });
    return { chainDer: [leaf.der, signer.intermediate.raw], bundle: ca.bundle, spiffeId, notAfterMs, serial: leaf.serialHex };
  }
}
