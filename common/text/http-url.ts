// Whether a string is an http(s) URL a client can use as written: one rule for every URL Tessera reads (config keys
// of format url, the tessera.dev/tracing-endpoint annotation, the OTEL_* endpoint variables). The WHATWG parser they
// all go through repairs what it is given: it drops tabs and newlines anywhere, trims controls and spaces, reads "\"
// as "/" and "http:x" as "http://x/", and takes port 0; so a typo became another URL, or one no exporter can reach
// (audit 38b, F8). It also rewrites hosts: "0x7f.1", "2130706433" or "0177.0.0.1" become 127.0.0.1, and "%68"
// becomes "h", so a reader of the value would not see what it reaches (audit 40b, F5).

/** Control, format (invisible) and space characters: none belongs in a URL as written (a space is %20). */
const UNSEEN = /[\p{Cc}\p{Cf}\p{Z}]/u;

/** What the parser gives for any IPv4 host, whatever form it was written in. */
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Why `text` is not an http(s) URL usable as written, or null when it is: a phrase to follow the quoted value. */
export function httpUrlProblem(text: string): string | null {
  const url = URL.parse(text);
  if (url === null) return 'is not a URL';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'is not an http(s) URL';
  const unseen = UNSEEN.exec(text);
  if (unseen !== null) {
    const cp = unseen[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return `holds U+${cp} (a control, invisible or space character) at offset ${unseen.index}; a URL parser would drop or encode it`;
  }
  if (text.includes('\\')) return 'holds "\\", which a URL parser reads as "/"';
  if (!/^https?:\/\//i.test(text)) return 'does not start with http:// or https://';
  if (url.port === '0') return 'has port 0, where nothing can be reached';
  return hostProblem(text, url);
}

/** An IPv4 address written in another form than dotted decimal, or a percent-encoded host name. */
function hostProblem(text: string, url: URL): string | null {
  const authority = /^https?:\/\/([^/?#]*)/i.exec(text)![1]!;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPort.startsWith('[')) return null; // an IPv6 literal: the parser only normalises its spelling
  const host = hostPort.replace(/:\d*$/, '');
  if (host.includes('%')) return `has a percent-encoded host ("${host}"), which a URL parser decodes into "${url.hostname}"`;
  if (IPV4.test(url.hostname) && host !== url.hostname) return `writes the address ${url.hostname} as "${host}": write it as ${url.hostname}`;
  return null;
}
