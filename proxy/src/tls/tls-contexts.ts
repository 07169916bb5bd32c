// TLS settings per identity generation: one cached client SecureContext per SVID (building one per connection
// costs more than the handshake), server options for setSecureContext, session-ticket keys that outlive
// rotations so resumption keeps working across them, and the key-exchange groups proxies use between themselves.
import { randomBytes } from 'node:crypto';
import { type SecureContext, type SecureVersion, type TlsOptions, createSecureContext } from 'node:tls';
import { TLS_CIPHERS } from '../../../common/tls-ciphers.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';

export type TlsVersionSetting = '1.2' | '1.3';

export function minVersion(v: TlsVersionSetting | undefined): SecureVersion {
  return v === '1.2' ? 'TLSv1.2' : 'TLSv1.3';
}

/** TLS 1.2 only with forward-secret AEAD suites (common/tls-ciphers.ts). */
export const CIPHERS = TLS_CIPHERS;

/** Key-exchange groups a proxy may be configured with (`transport.tlsGroups`), by their OpenSSL names. */
export const TLS_GROUPS = ['X25519', 'X25519MLKEM768', 'SecP256r1MLKEM768', 'P-256', 'P-384', 'P-521'] as const;
export type TlsGroup = (typeof TLS_GROUPS)[number];

/**
 * The default: X25519 first (the cheaper key exchange, measured in bench `handshake`), the post-quantum hybrid
 * still accepted and used when a peer asks for it, P-256/P-384 for TLS stacks without X25519 (docs/transport.md).
 */
export const DEFAULT_TLS_GROUPS: readonly TlsGroup[] = ['X25519', 'X25519MLKEM768', 'P-256', 'P-384'];

const isHybrid = (g: TlsGroup) => g.includes('MLKEM');

/**
 * The server's OpenSSL group list. Classical first: one preference tuple, so a key share the client already sent
 * is taken (a client that sent only a hybrid share keeps it, no retry round trip). Hybrid first: a tuple per
 * group, so the server holds to its order and asks a client that sent only an X25519 share for the hybrid one
 * (HelloRetryRequest): the hybrid is used whenever either proxy puts it first.
 */
export function serverGroupList(groups: readonly TlsGroup[]): string {
  return groups.join(groups[0] && isHybrid(groups[0]) ? ' / ' : ':');
}

/** The client's list: OpenSSL sends a key share for the first group only and offers the rest. */
export function clientGroupList(groups: readonly TlsGroup[]): string {
  return groups.join(':');
}

/**
 * Session-ticket key material (48 bytes), replaced on a schedule (a ticket key that never changes would let one
 * stolen key decrypt every session resumed with it, forever) and with every identity generation: a resumed session
 * skips the server's certificate, so one made under an earlier SVID or bundle would go on vouching for a certificate
 * no longer served (one that lives longer than its successor, a CA since removed). After a swap each client makes
 * one full handshake, which checks what is served now, and resumes from its new ticket.
 */
export class TicketKeys {
  #keys = randomBytes(48);
  #generation: number | undefined;

  get current(): Buffer {
    return this.#keys;
  }

  /** The keys for a server context of identity `generation`: new ones the first time a later generation asks. */
  forGeneration(generation: number): Buffer {
    if (this.#generation === undefined || generation > this.#generation) {
      if (this.#generation !== undefined) this.rotate();
      this.#generation = generation;
    }
    return this.#keys;
  }

  rotate(): Buffer {
    this.#keys = randomBytes(48);
    return this.#keys;
  }
}

/**
 * Options for a server that requires a client certificate; the SVID check happens after the handshake, in
 * PeerVerifier (trust domains kept apart, cached per leaf), which alone decides. OpenSSL's own chain check would
 * only be ignored (rejectUnauthorized: false), so it gets no trust anchors (`ca: []`): that saves an ECDSA
 * verify per full handshake. The client still proves its key (CertificateVerify) in every handshake.
 */
export function serverSecureOptions(snapshot: IdentitySnapshot, ticketKeys: Buffer, version: TlsVersionSetting | undefined, alpn: string[], groups: readonly TlsGroup[] = DEFAULT_TLS_GROUPS): TlsOptions {
  return {
    cert: snapshot.chainPem,
    key: snapshot.keyPem,
    ca: [],
    ecdhCurve: serverGroupList(groups),
    minVersion: minVersion(version),
    ciphers: CIPHERS,
    requestCert: true,
    rejectUnauthorized: false,
    ticketKeys,
    ALPNProtocols: alpn,
  };
}

export class ClientContexts {
  #generation = -1;
  #ctx: SecureContext | undefined;
  readonly #groups: string;

  /** `groups`: `transport.tlsGroups`, in preference order. */
  constructor(groups: readonly TlsGroup[] = DEFAULT_TLS_GROUPS) {
    this.#groups = clientGroupList(groups);
  }

  /** The client context for this snapshot's SVID, built once per generation. */
  get(snapshot: IdentitySnapshot): SecureContext {
    if (snapshot.generation !== this.#generation || !this.#ctx) {
      this.#ctx = createSecureContext({ cert: snapshot.chainPem, key: snapshot.keyPem, ca: snapshot.caPem, minVersion: 'TLSv1.2', ciphers: CIPHERS, ecdhCurve: this.#groups });
      this.#generation = snapshot.generation;
    }
    return this.#ctx;
  }
}
