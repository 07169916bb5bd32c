// What only a Tessera proxy may say: the caller's identity (x-forwarded-client-cert) and the proxy's own refusal
// code (x-tessera-error). Where an app meets the mesh — the request it receives, the response it sends — its copies
// are dropped, so a caller cannot forge them towards an app and an app cannot make its answer look like a proxy's
// refusal (or name a caller) to the client. Between two proxies they pass: the peer's refusals are real.

/**
 * Field names that also match the spellings a gateway folds into them: `x_forwarded_client_cert`,
 * `x.forwarded.client.cert` go with `x-forwarded-client-cert`. CGI-style gateways (WSGI, PHP, Rack behind some
 * front ends; lighttpd's CGI, FastCGI and SCGI turn every character but a letter or digit into `_`) read them all as
 * the one variable HTTP_X_FORWARDED_CLIENT_CERT, so a forged copy so spelled would reach the app as the real field
 * (nginx ignores underscore fields by default for this reason; Envoy can be told to drop them). A name matches when
 * it has the listed name's length and letters and digits, with any character but a letter or digit where the listed
 * name has `-`. Only the names in the set are widened: other fields pass as they are. Build sets of such names with
 * this class, not by spreading one into a new Set (which keeps the names and loses the rule).
 */
export class FieldNames extends Set<string> {
  /** The listed names with a `-` in them, by length: what a name that is not listed as such is compared with. */
  readonly #folded = new Map<number, string[]>();
  /** Families by prefix (`x-envoy-`): every name that starts so, in any folded spelling, is in the set. */
  readonly #prefixes: readonly string[];
  /**
   * The prefixes by their first character (a letter: a name must start with it as written). Asked of every field of
   * an edge request, so a name meets only the few prefixes that share its first letter, not all forty.
   */
  readonly #prefixesByFirst = new Map<number, string[]>();

  constructor(names: Iterable<string>, prefixes: readonly string[] = []) {
    super(names);
    this.#prefixes = prefixes;
    for (const n of this) if (n.includes('-')) this.#folded.set(n.length, [...(this.#folded.get(n.length) ?? []), n]);
    for (const p of prefixes) this.#prefixesByFirst.set(p.charCodeAt(0), [...(this.#prefixesByFirst.get(p.charCodeAt(0)) ?? []), p]);
  }

  /** These names and prefixes and `names`: the way to widen a set (spreading one into a new set loses its rules). */
  with(names: Iterable<string>): FieldNames {
    return new FieldNames([...this, ...names], this.#prefixes);
  }

  override has(name: string): boolean {
    if (super.has(name)) return true;
    for (const prefix of this.#prefixesByFirst.get(name.charCodeAt(0)) ?? []) if (name.length >= prefix.length && foldsTo(name, prefix, prefix.length)) return true;
    // Asked of every field of every message: a length lookup first, so most names cost nothing more.
    const same = this.#folded.get(name.length);
    if (same === undefined) return false;
    for (const listed of same) if (foldsTo(name, listed, name.length)) return true;
    return false;
  }
}

/** Whether the first `n` characters of `name` are `listed`'s, some dashes written as other non-alphanumerics. */
function foldsTo(name: string, listed: string, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const l = listed.charCodeAt(i);
    if (c === l) continue;
    if (l !== 45 || isAlphanumeric(c)) return false;
  }
  return true;
}

function isAlphanumeric(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

/** Response fields (headers and HTTP/2 trailers) an app may not send on. */
export const APP_RESPONSE_DROP: ReadonlySet<string> = new FieldNames(['x-forwarded-client-cert', 'x-tessera-error']);

/**
 * Fields that make an app act on another path or method than the request's, which the policy decided on: a WSGI
 * server splits the path by SCRIPT_NAME (gunicorn reads it as a header from 127.0.0.1, where a sidecar connects
 * from), IIS, Symfony, Zend and Azure take X-Original-URL, X-Rewrite-URL, X-WAWS-Unencoded-URL for the path, Next.js
 * X-Matched-Path, method-override middleware X-HTTP-Method-Override; Next.js skips its middleware (auth included) for
 * X-Middleware-Subrequest (CVE-2025-29927). Dropped from every caller on every listener.
 */
export const PATH_OVERRIDE_FIELDS: readonly string[] = ['script-name', 'x-script-name', 'path-info', 'x-original-url', 'x-original-uri', 'x-original-path', 'x-rewrite-url', 'x-request-uri', 'request-uri', 'x-original-request-uri', 'x-waws-unencoded-url', 'x-matched-path', 'x-ingress-path', 'x-http-method-override', 'x-http-method', 'x-method-override', 'x-method', 'x-original-method', 'x-middleware-subrequest'];

/** Request fields a caller's request loses before the app: the proxy sets x-forwarded-client-cert itself. */
export const CALLER_REQUEST_DROP: ReadonlySet<string> = new FieldNames(['x-forwarded-client-cert', 'x-tessera-error', ...PATH_OVERRIDE_FIELDS]);

/** The same, with the trace context too: a traced request gets the proxy's span context, never the caller's. */
export const CALLER_REQUEST_DROP_TRACED: ReadonlySet<string> = new FieldNames([...CALLER_REQUEST_DROP, 'traceparent', 'tracestate']);

/**
 * Fields that name the client's address to an app, beside X-Forwarded-For: frameworks and rate limiters read them
 * (Rails' remote_ip reads Client-IP, many apps X-Real-IP or a CDN's field, Java's classic getClientIp Proxy-Client-IP
 * and WL-Proxy-Client-IP). From an outside client they are a claim
 * anyone can make, so the edge drops them and sets x-real-ip from the connection; a trusted proxy's pass.
 */
export const CLIENT_ADDRESS_FIELDS: readonly string[] = [
  ...['x-real-ip', 'true-client-ip', 'x-client-ip', 'client-ip', 'x-cluster-client-ip', 'x-original-forwarded-for', 'forwarded-for', 'proxy-client-ip', 'wl-proxy-client-ip'],
  ...['x-originating-ip', 'x-remote-ip', 'x-remote-addr', 'x-proxyuser-ip'],
  // CDNs' and clouds' (gin's ClientIP reads X-Appengine-Remote-Addr and Fly-Client-IP with no trust check)
  ...['cf-connecting-ip', 'cf-connecting-ipv6', 'cf-pseudo-ipv4', 'fastly-client-ip', 'x-appengine-remote-addr', 'fly-client-ip', 'x-azure-clientip', 'x-azure-socketip'],
  ...['x-nf-client-connection-ip', 'x-vercel-forwarded-for', 'do-connecting-ip', 'incap-client-ip', 'x-sucuri-clientip', 'cloudfront-viewer-address'],
  // "the platform itself calls": App Engine cron and task queues, Cloud Scheduler
  ...['x-appengine-cron', 'x-appengine-queuename', 'x-appengine-taskname', 'x-cloudscheduler'],
];

/**
 * How and where a request reached the front of the system, beside X-Forwarded-Proto and -Host (which the edge sets):
 * frameworks build URLs, scheme checks and redirects from them (Rails, Spring, Django read -Port, -Ssl, -Scheme,
 * -Prefix; IIS's Front-End-Https and X-ARR-SSL, Cloudflare's CF-Visitor, Fly's Fly-Forwarded-*, Tornado's X-Scheme say the scheme; X-Host
 * overrides the host). Dropped from outside clients, a trusted proxy's pass.
 */
export const FORWARDING_FIELDS: readonly string[] = [
  ...['x-forwarded-port', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-uri', 'x-forwarded', 'x-original-host', 'x-original-forwarded-host'],
  ...['x-host', 'x-http-host-override', 'disguised-host', 'front-end-https', 'x-url-scheme', 'x-scheme', 'x-arr-ssl', 'cf-visitor', 'cloudfront-forwarded-proto', 'fastly-ssl'],
  // Fly's proxy states the scheme, port and TLS of the client's connection in its own family
  ...['fly-forwarded-proto', 'fly-forwarded-port', 'fly-forwarded-ssl'],
];

/**
 * Where an authenticating front end states who the user is, for the app behind it: Authelia's and Authentik's
 * Remote-User, the Kubernetes front proxy's X-Remote-*, Kubernetes impersonation, Grafana's X-WEBAUTH-USER,
 * oauth2-proxy's X-Auth-Request-* and X-Forwarded-User/-Email/-Groups, Google IAP's X-Goog-*, Azure Easy Auth's
 * X-MS-CLIENT-PRINCIPAL*, AWS ALB's X-Amzn-Oidc-*, Cloudflare Access's Cf-Access-*, Kong's X-Consumer-* and
 * X-Authenticated-*, Pomerium's X-Pomerium-*, API Gateway's X-Apigateway-*, Apache's mod_auth_openidc,
 * mod_auth_mellon and Shibboleth, Vouch Proxy's. The list is open-ended: a front end whose fields are not here needs
 * them dropped by the app or its own proxy. From an outside client they are a
 * forged login; a trusted proxy (such a front end before the edge) keeps them. Prefixes: any name that starts so.
 */
export const FRONT_AUTH_FIELD_PREFIXES: readonly string[] = [
  ...['remote-user', 'remote-group', 'remote-email', 'remote-name', 'x-remote-user', 'x-remote-group', 'x-remote-extra-', 'impersonate-', 'x-webauth-'],
  ...['x-auth-request-', 'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-preferred-username', 'x-forwarded-groups', 'x-forwarded-access-token'],
  ...['x-goog-authenticated-user-', 'x-goog-iap-', 'x-ms-client-principal', 'x-ms-token-', 'x-amzn-oidc-', 'cf-access-', 'x-consumer-', 'x-authenticated-'],
  ...['x-credential-identifier', 'x-userinfo', 'x-pomerium-', 'x-apigateway-'],
  // Apache's mod_auth_openidc (OIDC_CLAIM_*, OIDC_access_token, OIDC_id_token*), mod_auth_mellon and Shibboleth's
  // attribute headers, Vouch Proxy's X-Vouch-*
  ...['oidc-claim-', 'oidc-access-token', 'oidc-id-token', 'mellon-', 'shib-', 'x-vouch-'],
];

/** What a trusted proxy's request keeps at the edge (forwarded-headers.ts reads them from it). */
export const TRUSTED_PROXY_FIELDS: readonly string[] = [...CLIENT_ADDRESS_FIELDS, ...FORWARDING_FIELDS];

/** The same as a set, with the front ends' user fields by prefix: what clientAddressOf keeps of a trusted proxy's. */
export const TRUSTED_PROXY_KEEP: FieldNames = new FieldNames(TRUSTED_PROXY_FIELDS, FRONT_AUTH_FIELD_PREFIXES);

/**
 * Where TLS terminators hand an app the client certificate's identity: RFC 9440's Client-Cert and Client-Cert-Chain,
 * nginx's and Apache's X-SSL-Client-* and SSL_CLIENT_*, Tomcat's and Undertow's SSL_* (cipher, session), AWS's
 * X-Amzn-Mtls-*, Cloudflare's Cf-Client-Cert-*, IIS ARR's X-ARR-ClientCert, ASP.NET Core's MS-ASPNETCORE-CLIENTCERT,
 * Jetty's Proxy-auth-cert, Proxy-ssl-id and X-Proxied-Https, Traefik's X-Forwarded-Tls-Client-Cert*. At the edge Tessera is the terminator and x-forwarded-client-cert its one statement
 * of a client's certificate, so these are dropped from every client, trusted proxies too.
 */
export const CLIENT_CERT_FIELD_PREFIXES: readonly string[] = [
  ...['client-cert', 'x-client-cert', 'x-client-verify', 'x-client-s-dn', 'x-client-i-dn', 'x-client-dn', 'x-ssl-', 'ssl-', 'x-tls-client-', 'x-client-tls-'],
  // Traefik's passTLSClientCert and its kin, under X-Forwarded-: the edge drops them with every x-forwarded-*
  ...['x-forwarded-tls-client-', 'x-forwarded-ssl-client-', 'x-forwarded-client-cert-'],
  ...['x-amzn-mtls-', 'x-arr-clientcert', 'cf-client-cert-', 'ms-aspnetcore-clientcert', 'proxy-auth-cert', 'proxy-ssl-id', 'x-proxied-https'],
];

/**
 * What an edge never takes from an outside client: identity and trace fields, the forwarding fields it sets from the
 * connection, the two lists above (a trusted proxy's forwarding fields are put back), every other X-Forwarded-*
 * and Envoy's x-envoy-* (Envoy drops those from external clients too), certificate identity, path and method overrides.
 */
export const EDGE_CLIENT_DROP: FieldNames = new FieldNames([...CALLER_REQUEST_DROP_TRACED, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', ...TRUSTED_PROXY_FIELDS, ...PATH_OVERRIDE_FIELDS], ['x-forwarded-', 'x-envoy-', ...CLIENT_CERT_FIELD_PREFIXES, ...FRONT_AUTH_FIELD_PREFIXES]);

/**
 * What a plaintext caller on a permissive inbound listener loses beside CALLER_REQUEST_DROP: the client-certificate
 * and front-end user fields the edge drops from its clients. The sidecar is its app's TLS terminator and this caller
 * proved no identity, so such a field is forged (an app written for the edge's guarantee would trust it). A mesh
 * peer's pass: it is authenticated, and a front end's user fields reach the app through the edge and its sidecar.
 */
export const UNAUTHENTICATED_CALLER_DROP: FieldNames = new FieldNames([...CALLER_REQUEST_DROP], [...CLIENT_CERT_FIELD_PREFIXES, ...FRONT_AUTH_FIELD_PREFIXES]);

/** The same, with the trace context (a traced request). */
export const UNAUTHENTICATED_CALLER_DROP_TRACED: FieldNames = UNAUTHENTICATED_CALLER_DROP.with(['traceparent', 'tracestate']);
