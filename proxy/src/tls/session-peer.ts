// The peer's leaf certificate as the TLS session itself records it (OpenSSL's serialized SSL_SESSION, whose
// `peer [3] EXPLICIT Certificate` holds the leaf the peer presented or, resumed, the one it presented then), hashed
// to the key PeerVerifier caches verified peers by. Why not read the peer certificate from the socket: Node builds
// a JS object of every field of every certificate the peer sent (getPeerCertificate(true); its X509 reader leaks
// them, sent-chain.ts), ~130 µs of a ~1 ms full handshake here, where this read costs ~35 µs (docs/transport.md). It is only a
// cache key, and only for resumed sessions (a full handshake's sent chain must be read to be checked): a miss, or a
// session this cannot read, takes the full path through the certificates.
import { hash } from 'node:crypto';
import { DerError, readNode } from '../../../common/pki/der.js';

const SEQUENCE = 0x30;
/** [3], constructed: SSL_SESSION's peer certificate field (ssl/ssl_asn1.c). */
const PEER = 0xa3;

/** The DER of the peer certificate in a serialized session, or undefined (none, or not a session this reads). */
export function sessionPeerDer(session: Uint8Array): Uint8Array | undefined {
  try {
    const top = readNode(session, 0);
    if (top.tag !== SEQUENCE) return undefined;
    for (let at = top.start; at < top.end; ) {
      const field = readNode(session, at, top.end);
      if (field.tag === PEER) {
        const cert = readNode(session, field.start, field.end);
        // The field holds exactly one certificate: a SEQUENCE that fills it, header included.
        return cert.tag === SEQUENCE && cert.end === field.end ? session.subarray(field.start, cert.end) : undefined;
      }
      at = field.end;
    }
    return undefined;
  } catch (err) {
    if (err instanceof DerError) return undefined;
    throw err;
  }
}

/**
 * SHA-256 of the peer's leaf (lower-case hex, as VerifiedPeer.leafHash), read from `socket`'s session, or
 * undefined. The serialized session carries the session's secret too: the buffer is zeroed before it is let go.
 */
export function sessionLeafHash(socket: { getSession(): Buffer | undefined }): string | undefined {
  const session = socket.getSession();
  if (!session) return undefined;
  try {
    const leaf = sessionPeerDer(session);
    return leaf ? hash('sha256', leaf, 'hex') : undefined;
  } finally {
    session.fill(0);
  }
}
