// A `host:port` address as configs and flags write it (IPv6 in brackets): its own file, so that a command that only
// checks an address (`tessera demo-app --listen`, `tessera svid fetch --control-plane`) does not load the YAML parser.
// The host is a DNS name, an IPv4 address in dotted decimal or [IPv6]: the resolver reads "2130706433", "0x7f.1",
// "1.2.3" or "010.0.0.1" as IPv4 addresses in other forms (127.0.0.1, 1.2.0.3, 8.0.0.1), so a typo would dial an
// address nobody wrote (audit 59c F2); they are refused, as the URL rule refuses them (text/http-url.ts).

const ADDRESS = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;
/** What the WHATWG host parser gives for any IPv4 host, whatever form it was written in. */
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** Why `text` is not a host:port address, or null when it is: a phrase to follow the quoted value. */
export function addressProblem(text: string): string | null {
  const m = ADDRESS.exec(text);
  if (!m) return 'is not a host:port address';
  if (Number(m[3]) > 65535) return 'has a port above 65535';
  // URL's host parser takes an IPv6 literal exactly when it is one (no I/O here: common/ imports no node:net).
  if (m[1] !== undefined) return URL.parse(`http://[${m[1]}]/`) !== null ? null : `has "[${m[1]}]", which is not an IPv6 address`;
  return hostProblem(m[2]!);
}

/** An inet_aton number: decimal, 0x hex or 0-octal (digits), as the resolver reads each part of an IPv4 address. */
const NUMBER_PART = /^(?:0x[0-9a-f]*|\d+)$/i;
const DOTTED_PART = /^(?:0|[1-9]\d{0,2})$/;

/**
 * A host that the resolver would read as an IPv4 address written otherwise. Only a host whose every label is a
 * number is read so: "api.123" (a service in namespace 123) is a name the resolver looks up, and stays one.
 */
function hostProblem(host: string): string | null {
  const labels = (host.endsWith('.') ? host.slice(0, -1) : host).split('.');
  if (!labels.every((l) => NUMBER_PART.test(l))) return null;
  if (host === labels.join('.') && labels.length === 4 && labels.every((l) => DOTTED_PART.test(l) && Number(l) <= 255)) return null;
  // The URL host parser reads IPv4 forms as resolvers do, and gives the dotted decimal they stand for.
  const parsed = URL.parse(`http://${host}/`)?.hostname;
  if (parsed !== undefined && IPV4.test(parsed)) return `writes the address ${parsed} as "${host}": write it as ${parsed}`;
  return `has the host "${host}", which is neither a DNS name nor an IPv4 address`;
}

export function parseAddress(text: string): { host: string; port: number } | null {
  if (addressProblem(text) !== null) return null;
  const m = ADDRESS.exec(text)!;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}
