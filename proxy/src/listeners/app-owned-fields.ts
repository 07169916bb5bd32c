// What only a Tessera proxy may say: the caller's identity (x-forwarded-client-cert) and the proxy's own refusal
// code (x-tessera-error). Where an app meets the mesh — the request it receives, the response it sends — its copies
// are dropped, so a caller cannot forge them towards an app and an app cannot make its answer look like a proxy's
// refusal (or name a caller) to the client. Between two proxies they pass: the peer's refusals are real.

/**
 * Field names that also match their underscore spellings: `x_forwarded_client_cert` goes with
 * `x-forwarded-client-cert`. CGI-style servers (WSGI, PHP, Rack behind some front ends) read both as the one variable
 * HTTP_X_FORWARDED_CLIENT_CERT, so a forged copy spelled with underscores would reach the app as the real field
 * (nginx ignores underscore fields by default for this reason; Envoy can be told to drop them). Only the names in the
 * set are widened: other fields with underscores pass as they are. Build sets of such names with this class, not by
 * spreading one into a new Set (which keeps the names and loses the rule).
 */
export class FieldNames extends Set<string> {
  override has(name: string): boolean {
    return super.has(name) || (name.includes('_') && super.has(name.replaceAll('_', '-')));
  }
}

/** Response fields (headers and HTTP/2 trailers) an app may not send on. */
export const APP_RESPONSE_DROP: ReadonlySet<string> = new FieldNames(['x-forwarded-client-cert', 'x-tessera-error']);

/** Request fields a caller's request loses before the app: the proxy sets x-forwarded-client-cert itself. */
export const CALLER_REQUEST_DROP: ReadonlySet<string> = new FieldNames(['x-forwarded-client-cert', 'x-tessera-error']);

/** The same, with traceparent too: a traced request gets the proxy's span context, never the caller's. */
export const CALLER_REQUEST_DROP_TRACED: ReadonlySet<string> = new FieldNames([...CALLER_REQUEST_DROP, 'traceparent']);

/** What an edge never takes from an outside client: the above, and the forwarding fields it sets from the connection. */
export const EDGE_CLIENT_DROP: ReadonlySet<string> = new FieldNames([...CALLER_REQUEST_DROP_TRACED, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
