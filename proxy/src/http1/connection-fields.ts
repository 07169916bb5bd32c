// Which header fields are connection-specific, once for every path that drops them: RFC 9110 section 7.6.1 names
// them for HTTP/1.1 (hop-by-hop: they describe one connection and end at the next hop), RFC 9113 section 8.2.2
// forbids them in HTTP/2 messages outright. Each path needs a variant of the one base list; each variant says why.

/**
 * The base list: Connection and the fields RFC 9110 section 7.6.1 says an intermediary removes (Proxy-Connection,
 * Keep-Alive, TE, Transfer-Encoding, Upgrade), which RFC 9113 section 8.2.2 forbids in HTTP/2, and HTTP2-Settings,
 * the h2c upgrade's connection-specific field (RFC 7540 section 3.2.1). Node's HTTP/2 layer throws on every one.
 */
export const CONNECTION_SPECIFIC: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'http2-settings'];

/**
 * HTTP/1.1 to HTTP/1.1 (http1/head-rewrite.ts isHopByHop, a switch over these names): Transfer-Encoding stays, the
 * body passes with its framing intact; HTTP2-Settings only goes when Connection names it (RFC 9110's rule, and the
 * Upgrade it belongs to is dropped anyway).
 */
export const HTTP1_HOP_BY_HOP: readonly string[] = CONNECTION_SPECIFIC.filter((n) => n !== 'transfer-encoding' && n !== 'http2-settings');

/**
 * An HTTP/2 request to an HTTP/2 upstream (h2/h2-forward.ts requestHeaders). TE is not here: it passes, but only as
 * `te: trailers` (RFC 9113 section 8.2.2; gRPC servers expect it), which requestHeaders writes in lower case; a TE
 * of any other value makes the request malformed, and Node's HTTP/2 layer resets such a stream with PROTOCOL_ERROR
 * before the proxy sees it. Host is here: the upstream request carries `:authority`, and a Host beside it could
 * name another authority (a request that came with `host` only gets that value as `:authority`: requestHeaders).
 */
export const H2_REQUEST_DROP: ReadonlySet<string> = new Set([...CONNECTION_SPECIFIC.filter((n) => n !== 'te'), 'host']);

/**
 * A response (head, 1xx or trailers) to an HTTP/2 client, from an HTTP/2 or an HTTP/1.1 upstream
 * (h2/h2-forward.ts, edge/h2-response-fields.ts): the whole base list, TE included, since TE belongs in requests
 * only, and Node's respond() and sendTrailers() throw on a TE other than `trailers` or on HTTP2-Settings.
 */
export const H2_RESPONSE_DROP: ReadonlySet<string> = new Set(CONNECTION_SPECIFIC);

/**
 * An HTTP/2 request re-made as HTTP/1.1 (edge/edge-h2-to-h1.ts): the whole base list, TE included (hop-by-hop in
 * HTTP/1.1, and the HTTP/1.1 client frames the request itself), and Host, which the edge sets from `:authority`,
 * else from the client's `host` (h2-heads.ts requestAuthority).
 */
export const H2_TO_H1_REQUEST_DROP: readonly string[] = [...CONNECTION_SPECIFIC, 'host'];
