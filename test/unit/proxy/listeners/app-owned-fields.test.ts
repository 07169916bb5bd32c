// The proxy-owned field names match the spellings a CGI-style gateway folds into them (`_`, `.`, `*`, `~`, … for `-`:
// lighttpd turns every character but a letter or digit into `_`), and only those.
import { describe, expect, test } from 'vitest';
import { APP_RESPONSE_DROP, CALLER_REQUEST_DROP, CALLER_REQUEST_DROP_TRACED, EDGE_CLIENT_DROP, FieldNames } from '../../../../proxy/src/listeners/app-owned-fields.js';

describe('FieldNames', () => {
  test('a listed name matches with any of its dashes written as underscores', () => {
    for (const set of [APP_RESPONSE_DROP, CALLER_REQUEST_DROP, CALLER_REQUEST_DROP_TRACED, EDGE_CLIENT_DROP]) {
      for (const n of ['x-forwarded-client-cert', 'x_forwarded_client_cert', 'x-forwarded_client-cert', 'x_tessera_error', 'x.forwarded.client.cert', 'x*forwarded~client|cert', 'x.tessera.error']) expect(set.has(n), n).toBe(true);
    }
    expect(CALLER_REQUEST_DROP_TRACED.has('traceparent')).toBe(true);
    expect(EDGE_CLIENT_DROP.has('x_forwarded_for')).toBe(true);
    expect(EDGE_CLIENT_DROP.has('x_forwarded_proto')).toBe(true);
  });

  test('other names, with or without underscores, do not', () => {
    for (const n of ['x_app_field', 'x-forwarded-client', 'x__forwarded_client_cert', 'xforwardedclientcert', 'x-forwarded-client-cert-2', 'x0forwarded-client-cert', 'xaforwarded-client-cert', '_x-forwarded-client-cer', 'accept-encoding', 'content-type']) expect(CALLER_REQUEST_DROP.has(n), n).toBe(false);
    expect(CALLER_REQUEST_DROP.has('x_forwarded_for')).toBe(false);
  });

  test('a set built from one keeps the rule', () => {
    const s = new FieldNames([...EDGE_CLIENT_DROP, 'http2-settings']);
    expect(s.has('http2_settings')).toBe(true);
    expect(s.has('x_forwarded_client_cert')).toBe(true);
  });

  test('with() widens a set and keeps its prefixes', () => {
    const s = EDGE_CLIENT_DROP.with(['http2-settings']);
    expect(s.has('http2_settings')).toBe(true);
    expect(s.has('x_envoy_internal')).toBe(true);
    expect(s.has('x-ssl-client-verify')).toBe(true);
  });
});

describe('the edge drops from outside clients every field a front proxy or TLS terminator owns, in any spelling', () => {
  test.each([
    // certificate identity (RFC 9440, nginx/Apache, AWS, IIS ARR, Traefik)
    'client-cert', 'client-cert-chain', 'client_cert', 'x-ssl-client-verify', 'x-ssl-client-s-dn', 'x_ssl_client_cert', 'x-ssl-cert', 'ssl-client-verify', 'ssl_client_s_dn', 'x-client-cert', 'x-client-cert-dn', 'x-client-verify', 'x-client-s-dn', 'x-client-i-dn', 'x-client-dn', 'x-tls-client-cert', 'x-client-tls-cert', 'x-amzn-mtls-clientcert', 'x-amzn-mtls-clientcert-leaf', 'x-arr-clientcert', 'x-forwarded-tls-client-cert', 'x-forwarded-tls-client-cert-info',
    // forwarding: the edge's own, the ones a trusted proxy keeps, any other X-Forwarded-*, Envoy's
    'x-forwarded-for', 'forwarded', 'x-forwarded-port', 'x_forwarded_ssl', 'x-forwarded-scheme', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-uri', 'x-forwarded', 'x.forwarded.anything', 'x-original-host', 'x-original-url', 'x_original_uri', 'x-rewrite-url', 'x-envoy-external-address', 'x_envoy_internal', 'x-envoy-original-path',
    // client address, scheme and host claims frameworks read
    'proxy-client-ip', 'wl_proxy_client_ip', 'x-originating-ip', 'x-remote-ip', 'x-remote-addr', 'x-proxyuser-ip', 'x-host', 'x-http-host-override', 'front-end-https', 'x-url-scheme', 'x-arr-ssl', 'cf-visitor',
    // a method or path other than the one the policy decided on
    'x-http-method-override', 'x_http_method', 'x-method-override', 'x_method', 'script_name', 'SCRIPT_NAME'.toLowerCase(), 'x-script-name', 'x-original-path', 'x-request-uri', 'request_uri', 'x-waws-unencoded-url', 'x-matched-path', 'x-middleware-subrequest',
    // an authenticating front end's statement of the user
    'remote-user', 'remote_groups', 'x-remote-user', 'x-remote-extra-scopes', 'impersonate-user', 'x-webauth-user', 'x-auth-request-email', 'x-forwarded-user', 'x-goog-authenticated-user-id', 'x-goog-iap-jwt-assertion', 'x-ms-client-principal', 'x-ms-token-aad-id-token', 'x-amzn-oidc-identity', 'cf-access-jwt-assertion', 'x-consumer-username', 'x-authenticated-userid', 'x-credential-identifier', 'x-userinfo', 'x-pomerium-jwt-assertion', 'x-apigateway-event', 'oidc_claim_sub', 'oidc-claim-email', 'oidc_access_token', 'oidc_access_token_expires', 'oidc_id_token_payload', 'mellon_nameid', 'shib-identity-provider', 'shib_session_id', 'x-vouch-user', 'x-vouch-idp-claims-email',
    // more certificate and client-address fields
    'cf-client-cert-der-base64', 'ms-aspnetcore-clientcert', 'proxy-auth-cert', 'proxy-ssl-id', 'x-proxied-https', 'ssl_cipher', 'ssl_session_id', 'forwarded-for', 'x-appengine-remote-addr', 'fly-client-ip', 'cf-connecting-ipv6', 'x-azure-clientip', 'x-vercel-forwarded-for', 'cloudfront-viewer-address', 'x-appengine-cron', 'x-cloudscheduler', 'x-scheme', 'disguised-host', 'fly-forwarded-proto', 'fly_forwarded_port', 'Fly-Forwarded-SSL'.toLowerCase(),
  ])('%s', (name) => {
    expect(EDGE_CLIENT_DROP.has(name)).toBe(true);
  });

  test('other fields pass', () => {
    for (const n of ['accept', 'content-type', 'user-agent', 'x-request-id', 'x-forwardedx', 'x-envoy', 'x-ssl', 'client', 'x-client', 'x-original', 'x-http-methods', 'authorization', 'cookie']) expect(EDGE_CLIENT_DROP.has(n), n).toBe(false);
  });

  test('on every listener, a caller\'s path and method overrides never reach the app (the policy decided on the request\'s)', () => {
    for (const set of [CALLER_REQUEST_DROP, CALLER_REQUEST_DROP_TRACED, EDGE_CLIENT_DROP]) {
      for (const n of ['script-name', 'script_name', 'x-script-name', 'x-original-url', 'x_rewrite_url', 'x-original-uri', 'x-waws-unencoded-url', 'x-matched-path', 'x-http-method-override', 'x-method-override', 'x-method', 'x-middleware-subrequest']) expect(set.has(n), n).toBe(true);
    }
  });

  test('the sidecar lists keep their narrow rule: a mesh caller\'s forwarding fields pass', () => {
    for (const n of ['x-forwarded-port', 'x-envoy-internal', 'x-ssl-client-verify']) expect(CALLER_REQUEST_DROP.has(n), n).toBe(false);
  });
});
