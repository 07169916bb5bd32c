// HTTP path normalization before policy matching, so "/v1/../admin" or "/%61dmin" cannot slip past a rule on "/admin".
// Refuses (null) what could be read two ways: encoded "/" or "\", raw "\", ".." above the root, bad escapes.

// Already normal: non-empty segments of plain characters, none "." or "..", optional trailing "/". Checked first so
// the common case costs one regex test.
const NORMAL = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9\-._~!$&'()*+,;=:@]+)*\/?$/;

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

/** Decodes escapes of unreserved characters and upper-cases the others; null when the segment must be refused. */
function normalizeSegment(seg: string): string | null {
  if (seg.indexOf('%') === -1 && seg.indexOf('\\') === -1 && /^[\x21-\x7e]*$/.test(seg)) return seg;
  let out = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c === 37) {
      const hi = hexValue(seg.charCodeAt(i + 1));
      const lo = hexValue(seg.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return null;
      const v = hi * 16 + lo;
      // An encoded separator would be one segment here and two in an app that decodes before routing.
      if (v === 0x2f || v === 0x5c) return null;
      out += isUnreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
    } else if (c === 92 || c <= 0x20 || c >= 0x7f) {
      // Raw "\" is a separator to some servers; controls, spaces and raw non-ASCII are not valid in a request target.
      return null;
    } else {
      out += seg[i];
    }
  }
  return out;
}

/**
 * The path as policies see it: query and fragment dropped, escaped unreserved characters decoded, "//" merged,
 * "." and ".." resolved (RFC 3986 section 5.2.4; a trailing "/" is kept). Returns null to refuse the request
 * (reason invalid_path): no leading "/", "%2F"/"%5C" or raw "\", a bad "%" escape, a control or non-ASCII
 * character, or ".." that climbs above the root.
 */
export function normalizeHttpPath(raw: string): string | null {
  let end = raw.length;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  const path = end === raw.length ? raw : raw.slice(0, end);
  if (path.charCodeAt(0) !== 47) return null;
  if (NORMAL.test(path)) return path;
  const segs = path.slice(1).split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 0; i < segs.length; i++) {
    const seg = normalizeSegment(segs[i]!);
    if (seg === null) return null;
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
