// TLS settings per identity generation: one cached client SecureContext per SVID (building one per connection
// costs more than the handshake), server options for setSecureContext, and session-ticket keys that outlive
// rotations so resumption keeps working across them.
import { randomBytes } from 'node:crypto';
import { type SecureContext, type SecureVersion, type TlsOptions, createSecureContext } from 'node:tls';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';

export type TlsVersionSetting = '1.2' | '1.3';

export function minVersion(v: TlsVersionSetting | undefined): SecureVersion {
  return v === '1.2' ? 'TLSv1.2' : 'TLSv1.3';
}

// TLS 1.2 only with forward-secret AEAD suites; TLS 1.3 suites are OpenSSL's defaults (all AEAD).
const TLS12_CIPHERS = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'].join(':');
const TLS13_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export const CIPHERS = `${TLS13_CIPHERS}:${TLS12_CIPHERS}`;

/**
 * Session-ticket key material (48 bytes), the same for every identity generation so resumption survives SVID
 * rotations, and itself replaced on a schedule: a ticket key that never changes would let one stolen key decrypt
 * every session resumed with it, forever.
 */
export class TicketKeys {
  #keys = randomBytes(48);

  get current(): Buffer {
    return this.#keys;
  }

  rotate(): Buffer {
    this.#keys = randomBytes(48);
    return this.#keys;
  }
}

/** Options for a server that requires a client certificate; the SVID check happens after the handshake. */
export function serverSecureOptions(snapshot: IdentitySnapshot, ticketKeys: Buffer, version: TlsVersionSetting | undefined, alpn: string[]): TlsOptions {
  return {
    cert: snapshot.chainPem,
    key: snapshot.keyPem,
    ca: snapshot.caPem,
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

  /** The client context for this snapshot's SVID, built once per generation. */
  get(snapshot: IdentitySnapshot): SecureContext {
    if (snapshot.generation !== this.#generation || !this.#ctx) {
      this.#ctx = createSecureContext({ cert: snapshot.chainPem, key: snapshot.keyPem, ca: snapshot.caPem, minVersion: 'TLSv1.2', ciphers: CIPHERS });
      this.#generation = snapshot.generation;
    }
    return this.#ctx;
  }
}
