// The forwarding headers the edge sets from the real connection (RFC 7239 Forwarded, X-Forwarded-For/-Proto/
// -Host, X-Real-IP). What a client sent is replaced, unless the client is one of the configured trusted proxies, in
// which case the chain is extended and the other client-address fields it sent pass. Pure.
import { isIP } from 'node:net';
import { TRUSTED_PROXY_KEEP } from '../listeners/app-owned-fields.js';

export interface ForwardedInput {
  readonly remoteAddress: string;
  /** The client's Host (or `:authority`) as received, port included: RFC 7239 section 5.3's `host` is that field's value. */
  readonly host: string;
  readonly incomingXff: string | undefined;
  readonly incomingForwarded: string | undefined;
  readonly incomingProto: string | undefined;
  /** The client-address and forwarding fields (TRUSTED_PROXY_FIELDS) the client sent, by name; read only from a trusted proxy. */
  readonly incomingClientAddress?: Readonly<Record<string, string>>;
  readonly trusted: boolean;
}

function forwardedNode(ip: string): string {
  return isIP(ip) === 6 ? `"[${ip}]"` : ip;
}

function quoteIfNeeded(v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

export function forwardedHeaders(i: ForwardedInput): Record<string, string> {
  const ip = i.remoteAddress.startsWith('::ffff:') ? i.remoteAddress.slice(7) : i.remoteAddress;
  const xff = i.trusted && i.incomingXff ? `${i.incomingXff}, ${ip}` : ip;
  const element = `for=${forwardedNode(ip)};proto=https;host=${quoteIfNeeded(i.host)}`;
  const forwarded = i.trusted && i.incomingForwarded ? `${i.incomingForwarded}, ${element}` : element;
  const out: Record<string, string> = {
    'x-forwarded-for': xff,
    'x-forwarded-proto': i.trusted && i.incomingProto ? i.incomingProto : 'https',
    'x-forwarded-host': i.host,
    forwarded,
  };
  if (i.trusted && i.incomingClientAddress) Object.assign(out, i.incomingClientAddress);
  out['x-real-ip'] ??= ip;
  return out;
}

/** The client-address, forwarding and front-end user fields a trusted proxy sent (TRUSTED_PROXY_KEEP), repeats joined. */
export function clientAddressOf(fields: Iterable<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of fields) if (TRUSTED_PROXY_KEEP.has(name)) out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  return out;
}

/**
 * An address as Node reports a peer's: IPv6 in its shortest form (`0:0::1` is `::1`), an IPv4-mapped one as the
 * IPv4 address (the matcher reads the peer so too), so an entry written either way matches.
 */
function canonicalIp(ip: string): string {
  const plain = ip.toLowerCase().startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  if (isIP(plain) !== 6) return plain;
  const host = new URL(`http://[${plain}]/`).hostname.slice(1, -1);
  return /^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(host) ? mappedIpv4(host.slice(7)) : host;
}

/** `::ffff:7f00:1` (how URL writes a mapped address) as 127.0.0.1. */
function mappedIpv4(hex: string): string {
  const [hi = 0, lo = 0] = hex.split(':').map((h) => Number.parseInt(h, 16));
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** A trusted-proxy list of exact IPs and IPv4 CIDRs. */
export function trustedMatcher(entries: readonly string[]): (ip: string) => boolean {
  const exact = new Set<string>();
  const nets: { base: number; mask: number }[] = [];
  for (const e of entries) {
    const slash = e.indexOf('/');
    if (slash < 0) {
      exact.add(canonicalIp(e));
      continue;
    }
    const bits = Number(e.slice(slash + 1));
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    nets.push({ base: (ipv4(e.slice(0, slash)) ?? 0) & mask, mask });
  }
  return (raw) => {
    const ip = raw.startsWith('::ffff:') ? raw.slice(7) : raw;
    if (exact.has(ip)) return true;
    const n = ipv4(ip);
    return n !== null && nets.some((c) => ((n & c.mask) >>> 0) === c.base >>> 0);
  };
}

function ipv4(s: string): number | null {
  if (isIP(s) !== 4) return null;
  return s.split('.').reduce((a, p) => ((a << 8) | Number(p)) >>> 0, 0);
}
