// RFC 5280 §4.2.1.10 name constraints, for the names an SVID path carries: URI SANs, checked on their host (a
// SPIFFE ID's trust domain), and DNS SANs (edge clients' certificates). OpenSSL holds the outbound side to a CA's
// constraints; the inbound verifier and the install checks hold to the same. A CA with constraints of another kind
// (directory names, IP addresses, e-mail) is refused whole: fail closed rather than accept what is not evaluated.
import type { NameConstraints } from './x509-fields.js';

/** The names of one certificate below a constraining CA. */
export interface ConstrainedNames {
  readonly uris: readonly string[];
  readonly dns: readonly string[];
}

/** The host of a URI (`spiffe://example.org/ns/x` → `example.org`), without userinfo or port; null without one. */
function uriHost(uri: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (!m) return null;
  const host = m[1]!.slice(m[1]!.lastIndexOf('@') + 1).replace(/:\d*$/, '');
  return host === '' ? null : host.toLowerCase();
}

/**
 * Whether `name` is in the subtree `base`. URI: the host itself, or with a leading "." any host below it. DNS: the
 * name and every name below it (a leading "." below it only, as OpenSSL reads it; empty: every name).
 */
function within(type: 'uri' | 'dns', base: string, name: string): boolean {
  const b = base.toLowerCase();
  const n = name.toLowerCase();
  if (b.startsWith('.')) return n.endsWith(b);
  if (type === 'uri') return n === b;
  return b === '' || n === b || n.endsWith(`.${b}`);
}

/** Why `names` break the constraints `nc`, or null when they keep to them. */
export function nameConstraintViolation(nc: NameConstraints, names: ConstrainedNames): string | null {
  const other = [...nc.permitted, ...nc.excluded].find((s) => s.type === 'other');
  if (other?.type === 'other') return `it has a name constraint of a kind Tessera does not evaluate (GeneralName tag 0x${other.tag.toString(16)})`;
  const hosts = names.uris.map(uriHost);
  if (hosts.includes(null)) return 'a URI name without a host cannot be checked against its name constraints';
  for (const [type, values] of [['uri', hosts as string[]], ['dns', names.dns]] as const) {
    const permitted = nc.permitted.flatMap((s) => (s.type === type ? [s.value] : []));
    const excluded = nc.excluded.flatMap((s) => (s.type === type ? [s.value] : []));
    for (const v of values) {
      const hit = excluded.find((e) => within(type, e, v));
      if (hit !== undefined) return `${type === 'uri' ? 'URI host' : 'DNS name'} ${v} is in its excluded subtree ${hit}`;
      if (permitted.length > 0 && !permitted.some((p) => within(type, p, v))) return `${type === 'uri' ? 'URI host' : 'DNS name'} ${v} is outside its permitted subtrees (${permitted.join(', ')})`;
    }
  }
  return null;
}
