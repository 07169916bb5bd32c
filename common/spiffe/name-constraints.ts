// RFC 5280 §4.2.1.10 name constraints, for the names an SVID path carries: URI SANs, checked on their host (a
// SPIFFE ID's trust domain), and DNS SANs (edge clients' certificates). OpenSSL holds the outbound side to a CA's
// constraints; the inbound verifier and the install checks hold to the same. A CA with constraints of another kind
// (directory names, IP addresses, e-mail) is refused whole: fail closed rather than accept what is not evaluated.
import type { NameConstraints } from './x509-fields.js';

/** The names of one certificate below a constraining CA. */
export interface ConstrainedNames {
  readonly uris: readonly string[];
  readonly dns: readonly string[];
  /** The subject's CNs: each taken as a DNS name, as OpenSSL does, when there is no DNS SAN and it looks like one. */
  readonly cns?: readonly string[];
}

/**
 * The host of a URI as OpenSSL reads it for name constraints: after `scheme://`, up to the first `:` or `/`
 * (`spiffe://a.test:1@b.test` is host `a.test`); null without `://` or with an empty host.
 */
function uriHost(uri: string): string | null {
  const at = uri.indexOf('://');
  if (at < 0) return null;
  const rest = uri.slice(at + 3);
  const end = rest.search(/[:/]/);
  const host = end < 0 ? rest : rest.slice(0, end);
  return host === '' ? null : host.toLowerCase();
}

/** A CN that reads as a host name (labels of letters, digits, `-` and `_`, two or more): OpenSSL's test. */
const HOSTNAME_CN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+$/;

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
  if (other?.type === 'other') return `it has a name constraint Tessera does not evaluate (${other.what})`;
  const uriConstrained = [...nc.permitted, ...nc.excluded].some((s) => s.type === 'uri');
  // URI names meet URI constraints only (a host-less URN under DNS-only constraints is unconstrained, as in OpenSSL).
  const hosts = uriConstrained ? names.uris.map(uriHost) : [];
  if (hosts.includes(null)) return 'a URI name without a host cannot be checked against its URI constraints';
  const dnsNames = names.dns.length === 0 ? (names.cns ?? []).filter((cn) => HOSTNAME_CN.test(cn)) : names.dns;
  for (const [type, values] of [['uri', hosts as string[]], ['dns', dnsNames]] as const) {
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
