// The authority an HTTP/2 request is forwarded with (h2-heads.ts requestAuthority, requestHeaders): the request's
// own, `:authority` or else `host` (RFC 9113 section 8.3.1). A request with `host` only went out without
// `:authority`, and node:http2's client named its session's (the next hop's address) instead (audit 53a F1).
import type * as http2 from 'node:http2';
import { describe, expect, test } from 'vitest';
import { requestAuthority, requestHeaders } from '../../../../proxy/src/h2/h2-heads.js';

const NONE: ReadonlySet<string> = new Set();
const head = (fields: http2.IncomingHttpHeaders): http2.IncomingHttpHeaders => ({ ':method': 'GET', ':path': '/x', ':scheme': 'https', ...fields });

describe('requestAuthority', () => {
  test.each([
    [{ ':authority': 'a.example' }, 'a.example'],
    [{ host: 'b.example:8443' }, 'b.example:8443'],
    [{ ':authority': 'a.example', host: 'b.example' }, 'a.example'],
    [{}, undefined],
  ] as const)('%j → %j', (fields, want) => {
    expect(requestAuthority(head(fields))).toBe(want);
  });
});

describe('requestHeaders', () => {
  test('a request with host only is forwarded with that host as :authority (and no host field)', () => {
    const out = requestHeaders(head({ host: 'b.example:8443' }), NONE, {});
    expect(out[':authority']).toBe('b.example:8443');
    expect(out.host).toBeUndefined();
  });

  test('with :authority and a different host, :authority is kept and host dropped, as before', () => {
    const out = requestHeaders(head({ ':authority': 'a.example', host: 'b.example' }), NONE, {});
    expect(out[':authority']).toBe('a.example');
    expect(out.host).toBeUndefined();
  });

  test('the pseudo-headers the upstream sets itself still go (:scheme)', () => {
    expect(requestHeaders(head({ ':authority': 'a.example' }), NONE, {})[':scheme']).toBeUndefined();
  });
});
