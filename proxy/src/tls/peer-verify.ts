// Verifies a TLS peer as an X.509-SVID (common/spiffe) instead of trusting OpenSSL's generic chain check, so
// trust domains stay confined and every failure has a reason. Results are cached per leaf (SHA-256 of its DER)
// and identity generation, at most `maxEntries` of them: a resumed session from the same peer costs a map lookup
// plus a validity check; a full handshake with a known leaf also checks that every certificate it sent is on the
// path verified before (a chain may change between handshakes; the chain is read without Node's leaking reader,
// sent-chain.ts); a
// rotation (new generation) checks every peer again, and the deny-list is checked by the callers on every
// connection, cached or not. Cached peers are keyed by their leafHash.
import type { X509Certificate } from 'node:crypto';
import { X509Certificate as X509 } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import type { ErrorCode } from '../../../common/errors.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { anchorOf, fingerprintOf } from '../../../common/spiffe/trust-bundle.js';
import type { SvidFailureReason } from '../../../common/spiffe/x509-svid.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import { type ChainSocket, SENT_MAX, type SentCertificate, peerChainHead, sentCertificates } from './sent-chain.js';
import { sessionLeafHash } from './session-peer.js';

export interface VerifiedPeer {
  readonly ok: true;
  readonly id: SpiffeId;
  readonly idText: string;
  /** SHA-256 of the leaf DER, lower-case hex (the XFCC Hash). */
  readonly leafHash: string;
  /** The leaf's serial, hex as node:crypto prints it (matched against the deny-list). */
  readonly serial: string;
  /** The verified path's validity (the leaf's, ended early by an issuer's): a cached or resumed peer is used only within it. */
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** The trust domain whose bundle held the path's anchor, and that anchor (`anchorOf`: name and key): peer-standing.ts. */
  readonly trustDomain: string;
  readonly anchor: string;
}

export interface PeerFailure {
  readonly ok: false;
  readonly reason: SvidFailureReason;
  /** The SVID rule the peer broke (a TESSERA_ERR_SVID_* code): what callers match on. */
  readonly code: ErrorCode;
  readonly message: string;
}

const CACHE_MAX = 1024;

/** A verified peer as cached: with the fingerprints of its path (and the anchors then), to check later chains by. */
interface CachedPeer {
  readonly peer: VerifiedPeer;
  readonly path: ReadonlySet<string>;
}


/** The socket of a finished server-side handshake, as verifySocket reads it (a node:tls TLSSocket). */
export interface PeerSocket extends ChainSocket {
  /** The serialized TLS session (it records the peer's leaf). */
  getSession(): Buffer | undefined;
  /** True for a resumed session: the peer sent no chain, its leaf is the one verified when the session began. */
  isSessionReused(): boolean;
}

const NO_CERT: PeerFailure = { ok: false, reason: 'no_client_cert', code: 'TESSERA_ERR_SVID_EMPTY_CHAIN', message: 'the peer presented no certificate' };
const TOO_LONG: PeerFailure = { ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_UNRELATED_CERT', message: `the peer sent more than ${SENT_MAX} certificates` };


const INTERMEDIATES_MAX = 64;

/**
 * Intermediates of chains that verified in full handshakes, by subject. A resumed TLS session carries only the
 * peer's leaf, so after a cache reset the chain is completed from here and verified afresh against the current
 * anchors — a removed authority still fails. Only verified path members are remembered: certificates a peer
 * merely sent (extras, look-alikes of a real intermediate's name) must never displace the real ones.
 */
export class IntermediateMemory {
  readonly #bySubject = new Map<string, X509Certificate[]>();

  remember(cas: readonly X509Certificate[]): void {
    for (const c of cas) {
      if (!c.ca || c.subject === c.issuer) continue;
      const same = this.#bySubject.get(c.subject) ?? [];
      if (same.some((x) => x.fingerprint256 === c.fingerprint256)) continue;
      if (this.#bySubject.size >= INTERMEDIATES_MAX) this.#bySubject.delete(this.#bySubject.keys().next().value!);
      // Several CAs may use the same intermediate name (rotations): keep a few per name, newest first.
      this.#bySubject.set(c.subject, [c, ...same].slice(0, 4));
    }
  }

  /** Appends remembered intermediates after a lone leaf: the one whose key actually signed it, bounded walk. */
  complete(certs: X509Certificate[]): void {
    if (certs.length !== 1) return;
    for (let i = 0; i < 4; i++) {
      const last = certs[certs.length - 1]!;
      const next = (this.#bySubject.get(last.issuer) ?? []).find((c) => !certs.includes(c) && last.checkIssued(c) && last.verify(c.publicKey));
      if (!next) return;
      certs.push(next);
    }
  }
}

export class PeerVerifier {
  readonly #cache = new Map<string, CachedPeer>();
  #generation = -1;
  readonly #intermediates = new IntermediateMemory();
  readonly #max: number;

  /** `maxEntries`: verified peers kept per generation (oldest dropped first). */
  constructor(opts: { readonly maxEntries?: number } = {}) {
    this.#max = Math.max(1, opts.maxEntries ?? CACHE_MAX);
  }

  /** Verified peers held now (for tests: the bound holds). */
  get size(): number {
    return this.#cache.size;
  }

  /**
   * `cert` is `socket.getPeerCertificate(true)`; `expectedId` enforces secure naming on the client side.
   * An empty certificate (no client cert) fails with no_client_cert.
   */
  verify(cert: DetailedPeerCertificate | PeerCertificate | undefined, snapshot: IdentitySnapshot, nowMs: number, expectedId?: SpiffeId): VerifiedPeer | PeerFailure {
    this.#sync(snapshot);
    if (!cert?.raw || !cert.fingerprint256) return NO_CERT;
    return this.#verifySent(fingerprintOf(cert), cert, snapshot, nowMs, expectedId);
  }

  /**
   * The inbound path. A known peer is found by its leaf as the TLS session records it (session-peer.ts), without
   * reading the chain; otherwise the leaf with its issuers linked (`getPeerCertificate(true)`, sent-chain.ts) is
   * verified.
   */
  verifySocket(socket: PeerSocket, snapshot: IdentitySnapshot, nowMs: number): VerifiedPeer | PeerFailure {
    this.#sync(snapshot);
    if (socket.isSessionReused()) {
      const known = sessionLeafHash(socket);
      const hit = known === undefined ? undefined : this.#lookup(known, nowMs);
      if (hit) return hit.peer;
    }
    const leaf = peerChainHead(socket);
    if (!leaf) return NO_CERT;
    return this.#verifySent(fingerprintOf(leaf), leaf, snapshot, nowMs);
  }

  /** A known leaf whose sent chain stays on its verified path is a cache hit; anything else is verified in full. */
  #verifySent(key: string, leaf: SentCertificate & { readonly raw: Buffer }, snapshot: IdentitySnapshot, nowMs: number, expectedId?: SpiffeId): VerifiedPeer | PeerFailure {
    const sent = sentCertificates(leaf);
    if (sent === null) return TOO_LONG;
    const hit = this.#lookup(key, nowMs, expectedId);
    if (hit && sent.every((c) => hit.path.has(c.fingerprint256!))) return hit.peer;
    // The chain walked once: the same certificates, as DER.
    return this.#verifyChain(key, sent.map((c) => c.raw), snapshot, nowMs, expectedId);
  }

  /** A new identity generation (rotation, new bundle) forgets every verified peer: each is checked again. */
  #sync(snapshot: IdentitySnapshot): void {
    if (snapshot.generation === this.#generation) return;
    this.#cache.clear();
    this.#generation = snapshot.generation;
  }

  #lookup(key: string, nowMs: number, expectedId?: SpiffeId): CachedPeer | undefined {
    const hit = this.#cache.get(key);
    return hit && hit.peer.notAfterMs > nowMs && nowMs >= hit.peer.notBeforeMs && (!expectedId || hit.peer.idText === expectedId.toString()) ? hit : undefined;
  }

  #verifyChain(key: string, chain: Buffer[], snapshot: IdentitySnapshot, nowMs: number, expectedId?: SpiffeId): VerifiedPeer | PeerFailure {
    if (chain.length === 0) return NO_CERT;
    let certs: X509Certificate[];
    try {
      certs = chain.map((d) => new X509(d));
    } catch {
      return { ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_MALFORMED', message: 'a peer certificate could not be parsed' };
    }
    this.#intermediates.complete(certs);
    const r = verifyX509Svid(certs, snapshot.bundles, expectedId ? { nowMs, expectedId } : { nowMs });
    if (!r.ok) return { ok: false, reason: r.reason, code: r.code, message: r.message };
    this.#intermediates.remember(r.path.slice(1, -1));
    const verified: VerifiedPeer = {
      ok: true,
      id: r.id,
      idText: r.id.toString(),
      leafHash: key,
      serial: r.leaf.serialNumber.toLowerCase(), // as /certs, `certs list` and the deny-list print it
      notBeforeMs: r.notBeforeMs,
      notAfterMs: r.notAfterMs,
      trustDomain: r.id.trustDomain.name,
      anchor: anchorOf(r.path[r.path.length - 1]!),
    };
    // What a later chain with this leaf may hold: the path, and the anchors TLS stacks append (as checkPath allows).
    const path = new Set(r.path.map((c) => c.fingerprint256));
    for (const b of snapshot.bundles.bundles()) for (const a of b.authorities) path.add(a.fingerprint256);
    if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, { peer: verified, path });
    return verified;
  }
}
