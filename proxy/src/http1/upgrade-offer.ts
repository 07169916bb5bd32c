// Which HTTP/1.1 upgrade offers go on to the app: an allow-list of protocols (`upgrades:` in the config, `websocket`
// unless the operator names others). After a switch the proxy relays bytes only, so a protocol that carries HTTP
// requests (h2c and its drafts, TLS as RFC 2817 uses it) would bring requests to the app past per-request
// authorization, and is refused even in the config; a deny-list of such names always misses the next one (audit 57a
// F3). Others (SPDY/3.1 for Kubernetes' exec streams, Docker's tcp) pass only where the operator names them. Envoy likewise switches only
// for the upgrade types it is configured with. Every other offer, and one that is not a valid protocol list, is
// dropped: the app sees a plain request, as from a server that declines the offer (RFC 9110 section 7.8).
import { type HttpHead, hasToken, headerValue } from './http1-head.js';

/** The protocols passed on when the config names none. */
export const DEFAULT_UPGRADES: readonly string[] = ['websocket'];

// RFC 9110 section 7.8: protocol = protocol-name ["/" protocol-version], both tokens.
const PROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?$/;

/**
 * Names that are HTTP itself (h2c, HTTP/2.0, http2, the h2/h2c draft tokens such as h2c-14 or h2c_14, the h2 preface's
 * PRI, QUIC) or TLS, whose only upgrade use is HTTP inside it (RFC 2817): never passed on, and refused in the config.
 * Also under a suffix (a digit, `-`, `_`, `.`, `/`), so that another spelling of the same thing is one too (audit 57e F3).
 */
const HTTP_CARRIER = /^(?:https?|h2c?|h3|tls|pri|quic)(?:$|[-_./0-9])/i;

/**
 * The protocols of an Upgrade value, each without the optional whitespace around it, empty list elements skipped
 * (RFC 9110 section 5.6.1.2), or null when an element is not protocol-name ["/" protocol-version]: a quoted string,
 * parameters (`h2c;q=1`), a space inside, an empty name or version.
 */
export function upgradeProtocols(value: string): string[] | null {
  const out: string[] = [];
  for (const element of value.split(',')) {
    const p = element.replace(/^[ \t]+|[ \t]+$/g, '');
    if (p === '') continue;
    if (!PROTOCOL.test(p)) return null;
    out.push(p);
  }
  return out;
}

/**
 * The Upgrade value an HTTP/1.1 request goes upstream with, or null: it is a plain request. An upgrade needs
 * HTTP/1.1, one Upgrade line named in Connection, a valid protocol list, and every protocol offered in `allowed`
 * (lower-case; compared without case), none of them HTTP itself. Anything else is dropped whole, never trimmed
 * to its allowed part.
 */
export function upgradeRequested(head: HttpHead, allowed: ReadonlySet<string>): string | null {
  if (head.minor !== 1) return null;
  const value = headerValue(head, 'upgrade');
  if (!value || head.names.indexOf('upgrade') !== head.names.lastIndexOf('upgrade')) return null;
  if (!hasToken(head, 'connection', 'upgrade')) return null;
  const offered = upgradeProtocols(value);
  if (offered === null || offered.length === 0) return null;
  // HTTP itself is refused even from a list that names it (the config cannot; a caller building its own could).
  for (const p of offered) if (!allowed.has(p.toLowerCase()) || HTTP_CARRIER.test(p.split('/')[0]!)) return null;
  return offered.join(', ');
}

/**
 * Whether an app's 101 switches to what was offered (`offered`, the Upgrade value the request went with): its own
 * Upgrade present, a valid protocol list, each protocol one of the offered ones (compared without case). RFC 9110
 * section 7.8 forbids a switch to anything else; a relayed one would carry, say, h2c behind a websocket offer past
 * per-request authorization (audit 57e F2).
 */
export function switchOffered(response: HttpHead, offered: string): boolean {
  const value = headerValue(response, 'upgrade');
  if (!value || response.names.indexOf('upgrade') !== response.names.lastIndexOf('upgrade')) return false;
  const to = upgradeProtocols(value);
  if (to === null || to.length === 0) return false;
  const asked = new Set(offered.split(',').map((p) => p.trim().toLowerCase()));
  return to.every((p) => asked.has(p.toLowerCase()));
}

/** What is wrong with `protocol` as an entry of `upgrades:`, or null when it may be allowed. */
export function upgradeConfigProblem(protocol: string): string | null {
  if (!PROTOCOL.test(protocol)) return 'must be a protocol name of token characters, optionally with "/version" (RFC 9110 section 7.8), e.g. websocket';
  if (HTTP_CARRIER.test(protocol.split('/')[0]!))
    return 'an upgrade to HTTP itself, or to TLS with HTTP inside it, is never passed on: the requests it carries would skip per-request authorization';
  return null;
}
