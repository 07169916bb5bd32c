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
});
