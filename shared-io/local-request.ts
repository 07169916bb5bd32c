// Who may read an admin listener: it has no authentication of its own, so a request is served only when its Host
// names an address (an IP literal) or localhost, never a DNS name, and it does not come from another site's page.
// A web page that rebinds its own name to 127.0.0.1 (or to a port-forwarded admin port) sends its own name as
// Host; a page of another site sends Sec-Fetch-Site: cross-site or a foreign Origin. kubelet probes, Prometheus
// scrapes and curl send an address (or localhost) and neither header. The control plane's and the proxy's admin
// listeners share these rules.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** Loopback peer: 127.0.0.0/8, ::1, or 127.x mapped into IPv6. */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || (isIP(v4) === 4 && v4.startsWith('127.'));
}

/** `:` and a port 1-65535 without a leading zero. */
const PORT = /^:(?:[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])$/;

/**
 * A Host a browser sends only when pointed at an address or at localhost: `[v6]`, `v4` or `localhost` (any case, a
 * trailing dot or not), then `:port`.
 */
export function isLocalHost(host: string | undefined): boolean {
  if (!host) return false;
  let name: string;
  let rest: string;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return false;
    name = host.slice(1, end);
    rest = host.slice(end + 1);
    // No zone id: node:net takes any text after '%' ([::1%evil.example]); a browser never sends one.
    if (name.includes('%') || isIP(name) !== 6) return false;
  } else {
    const colon = host.indexOf(':');
    name = colon === -1 ? host : host.slice(0, colon);
    rest = colon === -1 ? '' : host.slice(colon);
    // A name is case-insensitive and a trailing dot names the same one (RFC 9110 §4.2.3, DNS): curl sends it as typed.
    const lower = name.toLowerCase();
    if (lower !== 'localhost' && lower !== 'localhost.' && isIP(name) !== 4) return false;
  }
  return rest === '' || PORT.test(rest);
}

/**
 * Why `req` may not read an admin listener, or null when it may: a missing, doubled or non-local Host (DNS
 * rebinding), or a browser request made by another site's page.
 */
export function adminRequestRefusal(req: Pick<IncomingMessage, 'headers' | 'rawHeaders'>): string | null {
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  if (hosts !== 1 || !isLocalHost(req.headers.host)) return 'the admin listener answers requests addressed to an IP address or localhost only';
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  // Only the two values a browser sends for its own or no site pass: doubled lines (joined), other spellings or
  // unknown values are refused rather than read as a site they may not be (audit 57a I1).
  if ((site !== undefined && site !== 'none' && site !== 'same-origin') || (origin !== undefined && !sameOrigin(origin, req.headers.host!))) return 'the admin listener does not answer other sites\' pages';
  return null;
}

/** Origin `http://<host>` (or https) naming exactly the Host the request was sent to, in either letter case. */
function sameOrigin(origin: string, host: string): boolean {
  const o = origin.toLowerCase();
  const h = host.toLowerCase();
  return o === `http://${h}` || o === `https://${h}`;
}
