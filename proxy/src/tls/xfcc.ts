// The x-forwarded-client-cert element a proxy adds for a verified client, in Envoy's grammar: keys in Envoy's order
// (By, Hash, Subject, URI, DNS), a value bare when it is a plain token and double-quoted with `\` and `"` escaped
// otherwise, so no certificate field can smuggle a `;`, `,` or `=` that a parser would read as another key or
// element. One builder for the sidecars and the edge.

export interface XfccElement {
  /** The SPIFFE ID of the proxy that verified the client (its own). */
  readonly by: string;
  /** Hex SHA-256 of the client's leaf certificate (DER). */
  readonly hash: string;
  /** The client certificate's subject; always quoted, as Envoy does. Absent or empty: no Subject key. */
  readonly subject?: string;
  /** The client's SPIFFE ID (its URI SAN). */
  readonly uri?: string;
  readonly dns?: readonly string[];
}

/** Printable ASCII only: a certificate subject may hold anything, a header value may not. */
export function printableAscii(v: string): string {
  return v.replace(/[^\x20-\x7e]/g, '?');
}

/** A value double-quoted, with `\` and `"` escaped (non-printable characters become `?`). */
export function xfccQuoted(v: string): string {
  return `"${printableAscii(v).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

const TOKEN = /^[A-Za-z0-9._~:/\-+@%!$&'()*]+$/;

/** A value bare when it is a plain token, else quoted (Envoy's grammar). */
export function xfccValue(v: string): string {
  return TOKEN.test(v) ? v : xfccQuoted(v);
}

/** One XFCC element: `By=…;Hash=…[;Subject="…"][;URI=…][;DNS=…]…` (only the parts that exist). */
export function xfccElement(e: XfccElement): string {
  let s = `By=${xfccValue(e.by)};Hash=${xfccValue(e.hash)}`;
  if (e.subject) s += `;Subject=${xfccQuoted(e.subject)}`;
  if (e.uri) s += `;URI=${xfccValue(e.uri)}`;
  for (const d of e.dns ?? []) s += `;DNS=${xfccValue(d)}`;
  return s;
}
