// HAProxy configurations for the peer pair (one thread each), as in reference/peer-baseline.md, and its stats parsing.

export interface HaproxyCommon {
  /** Admin socket in the work directory: `show info` gives CumSslConns (TLS connections accepted). */
  readonly statsSocket: string;
}

function globalAndDefaults(c: HaproxyCommon): string[] {
  return [
    'global',
    '  nbthread 1',
    '  maxconn 4096',
    `  stats socket ${c.statsSocket} mode 600 level admin`,
    '',
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 75s',
    '  timeout server 75s',
    '  timeout http-keep-alive 75s',
    '  option http-keep-alive',
    '  http-reuse always',
    '',
  ];
}

/**
 * The DER encoding of a URI GeneralName ([6] IMPLICIT IA5String) as upper-case hex, to find a SPIFFE ID inside
 * `ssl_c_der,hex`: HAProxy 2.6 has no fetch for URI SANs (peer-baseline section 6).
 */
export function uriGeneralNameHex(uri: string): string {
  const body = Buffer.from(uri, 'ascii');
  let len: Buffer;
  if (body.length < 0x80) len = Buffer.from([body.length]);
  else if (body.length < 0x100) len = Buffer.from([0x81, body.length]);
  else len = Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([0x86]), len, body]).toString('hex').toUpperCase();
}

export interface HaproxyClientProxy extends HaproxyCommon {
  readonly listenPort: number;
  readonly upstreamPort: number;
  /** Leaf + intermediate + key in one PEM file. */
  readonly combinedFile: string;
  readonly rootFile: string;
  /** The DNS SAN the server must present (`verifyhost` checks DNS SANs only). */
  readonly serverName: string;
  /** h2c (prior knowledge) in, and HTTP/2 over mTLS to the server side (one multiplexed connection). */
  readonly http2?: boolean;
  /** HTTP/1.1 in, HTTP/2 over mTLS to the server side (`alpn h2` on the server line only). */
  readonly h2Upstream?: boolean;
}

/** Client side: plaintext HTTP in, mTLS out with `http-reuse always` (a shared keep-alive pool). */
export function haproxyClientProxyConfig(c: HaproxyClientProxy): string {
  const h2Out = c.http2 === true || c.h2Upstream === true;
  return [
    ...globalAndDefaults(c),
    'frontend plain_in',
    `  bind 127.0.0.1:${c.listenPort}${c.http2 ? ' proto h2' : ''}`,
    '  default_backend mesh_server',
    '',
    'backend mesh_server',
    `  server s1 127.0.0.1:${c.upstreamPort} ssl crt ${c.combinedFile} ca-file ${c.rootFile} verify required verifyhost ${c.serverName} sni str(${c.serverName}) ssl-min-ver TLSv1.2${h2Out ? ' alpn h2' : ''}`,
    '',
  ].join('\n');
}

export interface HaproxyServerProxy extends HaproxyCommon {
  readonly listenPort: number;
  readonly appPort: number;
  readonly combinedFile: string;
  readonly rootFile: string;
  /** The SPIFFE ID the client must carry; checked once per connection by matching its DER URI SAN. */
  readonly allowedClientId: string;
  /** Offer h2 by ALPN on the mTLS listener (the app behind stays HTTP/1.1). */
  readonly http2?: boolean;
}

/** Server side: mTLS in (client certificate required and verified, SPIFFE ID matched), plaintext to the app. */
export function haproxyServerProxyConfig(c: HaproxyServerProxy): string {
  return [
    ...globalAndDefaults(c),
    'frontend mtls_in',
    `  bind 127.0.0.1:${c.listenPort} ssl crt ${c.combinedFile} ca-file ${c.rootFile} verify required ssl-min-ver TLSv1.2${c.http2 ? ' alpn h2,http/1.1' : ''}`,
    `  tcp-request session reject unless { ssl_c_der,hex -m sub ${uriGeneralNameHex(c.allowedClientId)} }`,
    '  default_backend local_app',
    '',
    'backend local_app',
    `  server app 127.0.0.1:${c.appPort}`,
    '',
  ].join('\n');
}

/** Parses the "Name: value" lines of `show info`. */
export function parseShowInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}
