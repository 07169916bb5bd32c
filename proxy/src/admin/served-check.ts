// "Verify in use": a fresh TLS handshake to the proxy's own inbound listener, at the address it is bound to,
// reads the serial actually served, so a swap that did not take effect is seen (readiness, /certs, a metric).
// The listener knows these handshakes by their server name and by the client certificate, the proxy's own SVID,
// and neither counts them as peers' handshakes nor serves them: they have their own counter.
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';

/** The server name of the check's handshakes (.invalid: never a real name, RFC 6761). */
export const SERVED_CHECK_SERVERNAME = 'tessera-served-check.invalid';

/**
 * Whether a verified inbound handshake is the proxy's own check: its server name, and the proxy's current SVID as
 * the client certificate (only this proxy holds its key). Anything else is a peer, counted as one.
 */
export function isServedCheck(servername: string | false | null | undefined, peerSerial: string, current: IdentitySnapshot): boolean {
  return servername === SERVED_CHECK_SERVERNAME && peerSerial.toLowerCase() === current.serial;
}

/** Where to dial the inbound listener: its bound host (a wildcard bind is reached on loopback) and port. */
export interface ServedTarget {
  readonly host: string;
  readonly port: number;
}

/** The address to dial for a listener bound to `host`: the host itself, or loopback for a wildcard bind. */
export function dialableHost(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The leaf a listener served: its serial (lower-case hex) and NotAfter. */
export interface ServedLeaf {
  readonly serial: string;
  readonly notAfterMs: number;
}

/** Connects to our own inbound listener and reads the serial it serves (null on any failure). */
export async function probeServedSerial(snapshot: IdentitySnapshot, target: ServedTarget, timeoutMs = 2_000): Promise<string | null> {
  return (await probeServedLeaf(snapshot, target, timeoutMs))?.serial ?? null;
}

/** Connects to our own inbound listener and reads the leaf certificate it serves (null on any failure). */
export function probeServedLeaf(snapshot: IdentitySnapshot, target: ServedTarget, timeoutMs = 2_000): Promise<ServedLeaf | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: dialableHost(target.host),
      port: target.port,
      cert: snapshot.chainPem,
      key: snapshot.keyPem,
      ca: snapshot.caPem,
      servername: SERVED_CHECK_SERVERNAME,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    const done = (v: ServedLeaf | null) => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(timeoutMs, () => done(null));
    // End politely (close_notify) rather than reset: an abrupt close counts as a failed handshake on the server.
    socket.once('secureConnect', () => {
      // The leaf alone (Node's X509 reader leaks the chain after it: sent-chain.ts).
      const raw = socket.getPeerCertificate().raw;
      const leaf = raw ? new X509Certificate(raw) : null;
      const served = leaf ? { serial: leaf.serialNumber.toLowerCase(), notAfterMs: leaf.validToDate.getTime() } : null;
      socket.once('close', () => resolve(served));
      socket.end();
    });
    socket.once('error', () => done(null));
  });
}
