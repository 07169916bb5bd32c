// The Host field (and HTTP/2's :authority) held to its grammar, RFC 9112 section 3.2 with RFC 3986 section 3.2.2:
// uri-host [ ":" port ]. Anything else is a 400: a value such as "a.example:443/admin?" or "a.example:1@evil.test"
// passed on untouched let an app that builds its URL from Host and target (`new URL(`http://${host}${url}`)`, as
// Fetch-API adapters do) serve a path or a host the policy and the edge's routing never saw.
import { isIPv6 } from 'node:net';

/**
 * reg-name narrowed to what host names are made of: no pct-encoded (no client writes a host in %-escapes, and a
 * decoded "%2F" is a path separator) and no sub-delims (`,` made "a.example,b.example" a list once copied into
 * X-Forwarded-Host, whose first element named a host the edge had not routed by; `;` `=` read as parameters).
 */
const REG_NAME = /^[A-Za-z0-9\-._~]+$/;
const PORT = /^[0-9]{0,5}$/;

/** Whether `value` (already trimmed of surrounding whitespace) is a valid Host field value. */
export function isValidHostValue(value: string): boolean {
  // RFC 9112: a target URI without an authority is sent with an empty Host.
  if (value === '') return true;
  let port: string | undefined;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    // IP-literal: an IPv6 address (IPvFuture and zone identifiers are not accepted).
    if (close < 0 || value.slice(1, close).includes('%') || !isIPv6(value.slice(1, close))) return false;
    const rest = value.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return false;
      port = rest.slice(1);
    }
  } else {
    const colon = value.indexOf(':');
    if (!REG_NAME.test(colon < 0 ? value : value.slice(0, colon))) return false;
    if (colon >= 0) port = value.slice(colon + 1);
  }
  return port === undefined || (PORT.test(port) && (port === '' || Number(port) <= 65_535));
}
