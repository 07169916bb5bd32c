// Who an edge client is, from its verified certificate: a SPIFFE ID when its URI SAN is one, otherwise the
// subject and DNS SANs; and the x-forwarded-client-cert value the upstream receives for it.
import type { PeerCertificate } from 'node:tls';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';

export interface EdgeClient {
  readonly spiffeId: SpiffeId | null;
  readonly subject: string;
  readonly hash: string;
  readonly dns: readonly string[];
}

function subjectText(cert: PeerCertificate): string {
  const s = cert.subject as unknown as Record<string, string | string[]> | undefined;
  if (!s) return '';
  return Object.entries(s)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(',');
}

export function edgeClient(cert: PeerCertificate): EdgeClient {
  const sans = (cert.subjectaltname ?? '').split(', ');
  let spiffeId: SpiffeId | null = null;
  const uris = sans.filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  if (uris.length === 1 && uris[0]!.startsWith('spiffe://')) {
    try {
      spiffeId = SpiffeId.parse(uris[0]!);
    } catch {
      spiffeId = null;
    }
  }
  return {
    spiffeId,
    subject: subjectText(cert),
    hash: (cert.fingerprint256 ?? '').replaceAll(':', '').toLowerCase(),
    dns: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
  };
}

const quote = (v: string) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;

/** Envoy's XFCC element: By, Hash, Subject, URI, DNS (only the parts that exist). */
export function xfccFor(ownId: string, c: EdgeClient): string {
  const parts = [`By=${ownId}`, `Hash=${c.hash}`];
  if (c.subject) parts.push(`Subject=${quote(c.subject)}`);
  if (c.spiffeId) parts.push(`URI=${c.spiffeId}`);
  for (const d of c.dns) parts.push(`DNS=${d}`);
  return parts.join(';');
}
