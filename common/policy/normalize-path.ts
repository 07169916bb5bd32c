// HTTP path normalization before policy matching, so "/v1/../admin" or "/%61dmin" cannot slip past a rule on "/admin",
// and the target forwarded in its place, so the app receives exactly the path the policy decided on.
// Refuses (null) what could be read two ways: a fragment, encoded "/" or "\", raw "\", ".." above the root, dot
// segments with ";" parameters (raw or escaped), encoded control characters, bad escapes.

// Already normal: non-empty segments of plain characters, none "." or ".." (with or without ";" parameters) nor
// starting with ";", optional trailing "/". Checked first so the common case costs one regex test.
const NORMAL = /^(?:\/(?!\.\.?(?:\/|;|$)|;)[A-Za-z0-9\-._~!$&'()*+,;=:@]+)*\/?$/;
// A whole request target: visible ASCII, and no "#" (RFC 9112 section 3.2: a fragment is never sent; an app that
// parses one would route on a path the policy never saw, e.g. "/public/x#/../../admin").
const TARGET_CHARS = /^[\x21\x22\x24-\x7e]*$/;

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Whether escaped bytes >= 0x80 form valid UTF-8 (an overlong "%C0%AE" is "." to a lax decoder). */
function validUtf8(bytes: number[] | null): boolean {
  if (bytes === null) return true;
  try {
    UTF8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

/** Decodes escapes of unreserved characters and upper-cases the others; null when the segment must be refused. */
function normalizeSegment(seg: string): string | null {
  if (seg.indexOf('%') === -1 && seg.indexOf('\\') === -1 && /^[\x21-\x7e]*$/.test(seg)) return seg;
  let out = '';
  // The current run of escaped non-ASCII bytes, checked as UTF-8 when it ends.
  let high: number[] | null = null;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    const hi = c === 37 ? hexValue(seg.charCodeAt(i + 1)) : -1;
    const lo = c === 37 ? hexValue(seg.charCodeAt(i + 2)) : -1;
    if (hi >= 8 && lo >= 0) {
      high ??= [];
      high.push(hi * 16 + lo);
    } else if (high !== null) {
      if (!validUtf8(high)) return null;
      high = null;
    }
    if (c === 37) {
      if (hi < 0 || lo < 0) return null;
      const v = hi * 16 + lo;
      // An encoded separator would be one segment here and two in an app that decodes before routing; an encoded
      // control character (NUL above all) ends or splits the path in some apps' string handling.
      if (v === 0x2f || v === 0x5c || v < 0x20 || v === 0x7f) return null;
      out += isUnreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
    } else if (c === 92 || c <= 0x20 || c >= 0x7f) {
      // Raw "\" is a separator to some servers; controls, spaces and raw non-ASCII are not valid in a request target.
      return null;
    } else {
      out += seg[i];
    }
  }
  return validUtf8(high) ? out : null;
}

/**
 * Servlet containers read "..;x" as ".." and ";x" as an empty segment (they strip ";" parameters before resolving
 * dot segments and merging "//"). An escaped ";" ("..%3B", "%2e%2e%3b", ".%3B", "%3Bx"; normalizeSegment has
 * decoded the dots and upper-cased the escape) is the same segment to an app that percent-decodes before it strips.
 */
function isDotWithParams(seg: string): boolean {
  const semi = seg.indexOf(';');
  const escaped = seg.indexOf('%3B');
  const cut = semi < 0 ? escaped : escaped < 0 ? semi : Math.min(semi, escaped);
  if (cut < 0) return false;
  const name = seg.slice(0, cut);
  return name === '' || name === '.' || name === '..';
}

/**
 * A "." or ".." segment ended by an escaped "?" or "#" ("..%3F", ".%23"; normalizeSegment has decoded the dots and
 * upper-cased the escape): kept as a segment here, it is a dot segment to an app that percent-decodes the target and
 * parses it again, so "/admin/x/..%3F" would be "/admin" there and "/admin/x/.." to the DENY rules (audit 60e F1).
 */
const DOT_BEFORE_DELIMITER = /^\.\.?%(?:3F|23)/;

/**
 * The path as policies see it: query dropped, escaped unreserved characters decoded, "//" merged, "." and ".."
 * resolved (RFC 3986 section 5.2.4; a trailing "/" is kept). Returns null to refuse the request (reason
 * invalid_path): a fragment ("#"), no leading "/" (absolute-form, "*", empty), "%2F"/"%5C" or raw "\", a bad "%"
 * escape, an encoded or raw control character, space or raw non-ASCII anywhere in the target, ".." that climbs
 * above the root, a dot or empty segment with parameters ("..;x", ";x", "..%3Bx", "%3Bx"), or a dot segment ended by
 * an escaped "?" or "#" ("..%3F", ".%23").
 */
export function normalizeHttpPath(raw: string): string | null {
  if (!TARGET_CHARS.test(raw)) return null;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (path.charCodeAt(0) !== 47) return null;
  if (NORMAL.test(path)) return path;
  const segs = path.slice(1).split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 0; i < segs.length; i++) {
    const seg = normalizeSegment(segs[i]!);
    if (seg === null || isDotWithParams(seg) || DOT_BEFORE_DELIMITER.test(seg)) return null;
    const last = i === segs.length - 1;
    trailingSlash = false;
    if (seg === '' || seg === '.') {
      trailingSlash = last;
    } else if (seg === '..') {
      if (out.length === 0) return null;
      out.pop();
      trailingSlash = last;
    } else {
      out.push(seg);
    }
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`;
}

/**
 * The path a DENY rule is also matched against when `normal` (a normalizeHttpPath result) holds an escaped "?" or
 * "#": the part before the first of them, undefined when there is none. Such an escape is forwarded as written (a tag
 * or file name may hold one: "/tags/c%23"), but an app that percent-decodes the target and parses it again reads
 * "/admin%23x" as "/admin" with a fragment: a rule about "/admin" must see that reading too. normalizeSegment
 * upper-cased the escapes, and every "%" of a normalized path starts one, so a plain search finds them.
 */
export function pathBeforeEscapedDelimiter(normal: string): string | undefined {
  if (normal.indexOf('%') < 0) return undefined;
  const q = normal.indexOf('%3F');
  const h = normal.indexOf('%23');
  const cut = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return cut < 0 ? undefined : normal.slice(0, cut);
}

/**
 * The request target to forward once the policy has decided on normalizeHttpPath(raw): that normalized path and
 * the client's query, byte for byte (the policy ignores the query; it is checked to be visible ASCII). null when
 * the target is refused.
 */
export function normalizeRequestTarget(raw: string): string | null {
  const path = normalizeHttpPath(raw);
  if (path === null) return null;
  const q = raw.indexOf('?');
  return q < 0 ? path : path + raw.slice(q);
}
