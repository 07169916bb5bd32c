// What only a Tessera proxy may say: the caller's identity (x-forwarded-client-cert) and the proxy's own refusal
// code (x-tessera-error). Where an app meets the mesh — the request it receives, the response it sends — its copies
// are dropped, so a caller cannot forge them towards an app and an app cannot make its answer look like a proxy's
// refusal (or name a caller) to the client. Between two proxies they pass: the peer's refusals are real.

/** Response fields (headers and HTTP/2 trailers) an app may not send on. */
export const APP_RESPONSE_DROP: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'x-tessera-error']);

/** Request fields a caller's request loses before the app: the proxy sets x-forwarded-client-cert itself. */
export const CALLER_REQUEST_DROP: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'x-tessera-error']);

/** The same, with traceparent too: a traced request gets the proxy's span context, never the caller's. */
export const CALLER_REQUEST_DROP_TRACED: ReadonlySet<string> = new Set([...CALLER_REQUEST_DROP, 'traceparent']);

/** What an edge never takes from an outside client: the above, and the forwarding fields it sets from the connection. */
export const EDGE_CLIENT_DROP: ReadonlySet<string> = new Set([...CALLER_REQUEST_DROP_TRACED, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
