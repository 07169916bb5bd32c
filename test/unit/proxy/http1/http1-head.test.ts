// Table-driven tests of the HTTP/1.1 head parser: valid heads, limits, malformed lines and the framing
// ambiguities request smuggling relies on (TE+CL, conflicting CLs, TE codings, TE on HTTP/1.0).
import { describe, expect, test } from 'vitest';
import { type HeadLimits, type HttpHead, headerTokens, headerValue, parseHead, requestFraming, responseFraming, wantsKeepAlive } from '../../../../proxy/src/http1/http1-head.js';

const LIMITS: HeadLimits = { maxHeaderBytes: 1024, maxHeaders: 8 };

function req(text: string, limits: HeadLimits = LIMITS) {
  return parseHead(Buffer.from(text, 'latin1'), 0, 'request', limits);
}
function res(text: string, limits: HeadLimits = LIMITS) {
  return parseHead(Buffer.from(text, 'latin1'), 0, 'response', limits);
}
function head(text: string, kind: 'request' | 'response' = 'request'): HttpHead {
  const r = kind === 'request' ? req(text) : res(text);
  if (!('head' in r)) throw new Error(`expected a head, got ${JSON.stringify(r)}`);
  return r.head;
}

describe('valid heads', () => {
  test.each([
    ['simple GET', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { method: 'GET', target: '/', minor: 1, names: ['host'], values: ['a'] }],
    ['HTTP/1.0 without headers', 'GET /x HTTP/1.0\r\n\r\n', { method: 'GET', target: '/x', minor: 0, names: [], values: [] }],
    ['header names lower-cased, values trimmed (SP and HTAB)', 'POST /p?q=1 HTTP/1.1\r\nHOST: a\r\nX-Tab:\t v \t\r\n\r\n', { method: 'POST', target: '/p?q=1', names: ['host', 'x-tab'], values: ['a', 'v'] }],
    ['empty value', 'GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n', { names: ['host', 'x-empty'], values: ['a', ''] }],
    ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\n\r\n', { values: ['a', 'caf\xe9'] }],
    ['leading empty lines are skipped', '\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', { method: 'GET' }],
    ['absolute-form target', 'GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n', { target: 'http://a/b' }],
    ...['HTTP://a', 'http://[::1]:8080/b', 'http://u@a?q', "http://a_,;=&$'()*!~.-:x/b", 'http:///b'].map(
      (target) => [`absolute-form ${target}`, `GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`, { target }] as [string, string, { target: string }],
    ),
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', { method: 'OPTIONS', target: '*' }],
    ['colon inside a value', 'GET / HTTP/1.1\r\nHost: a:80\r\n\r\n', { values: ['a:80'] }],
  ])('%s', (_name, text, expected) => {
    const h = head(text);
    expect(h).toMatchObject(expected);
    expect(h.length).toBe(Buffer.byteLength(text, 'latin1'));
  });

  test('length counts only the head, not bytes after it (pipelining, bodies)', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const r = parseHead(Buffer.from(`${text}GET /next HTTP/1.1\r\n`, 'latin1'), 0, 'request', LIMITS);
    expect('head' in r && r.head.length).toBe(text.length);
  });

  test('parsing from an offset', () => {
    const buf = Buffer.from('xxxxGET /o HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
    const r = parseHead(buf, 4, 'request', LIMITS);
    expect('head' in r && r.head.target).toBe('/o');
    expect('head' in r && r.head.length).toBe(buf.length - 4);
  });

  test.each([
    ['200 with reason', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 200, 1],
    ['no reason phrase', 'HTTP/1.1 204 \r\n\r\n', 204, 1],
    ['no reason phrase and no space', 'HTTP/1.1 404\r\n\r\n', 404, 1],
    ['HTTP/1.0', 'HTTP/1.0 500 Oops it broke\r\n\r\n', 500, 0],
    ['100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n', 100, 1],
  ])('response: %s', (_name, text, status, minor) => {
    const h = head(text, 'response');
    expect(h.status).toBe(status);
    expect(h.minor).toBe(minor);
    expect(h.method).toBeUndefined();
  });
});

describe('methods are case-sensitive tokens: one with a lower-case letter is refused', () => {
  test.each(['get', 'Get', 'gET', 'post', 'dElete', 'm-search', 'PURGe'])('%s → bad_request', (method) => {
    expect(req(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`)).toEqual({ rejected: 'bad_request' });
  });

  test.each(['GET', 'PURGE', 'M-SEARCH', 'MKCOL', 'X_CUSTOM1'])('%s passes', (method) => {
    expect(head(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`).method).toBe(method);
  });
});

describe('incomplete heads and limits', () => {
  test.each([
    ['nothing yet', ''],
    ['half a request line', 'GET / HT'],
    ['no blank line yet', 'GET / HTTP/1.1\r\nHost: a\r\n'],
    ['blank line cut after CR', 'GET / HTTP/1.1\r\nHost: a\r\n\r'],
  ])('%s → incomplete', (_name, text) => {
    expect(req(text)).toEqual({ incomplete: true });
  });

  test.each([
    ['response ended with bare LFs', 'response', 'HTTP/1.1 200 OK\nContent-Length: 5\n\nhello'],
    ['response with one bare LF, not yet ended', 'response', 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n'],
    ['request line ended with a bare LF', 'request', 'GET / HTTP/1.1\nHost: a\r\n'],
    ['a bare LF before the request', 'request', '\nGET / HTTP/1.1\r\n'],
  ] as const)('%s: refused at once, not held until the head deadline', (_name, kind, text) => {
    expect((kind === 'request' ? req : res)(text)).toEqual({ rejected: 'bad_request' });
  });

  test('a head exactly at maxHeaderBytes passes; one byte more is refused', () => {
    const base = 'GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n';
    const exact = base.replace('X-Pad: ', `X-Pad: ${'p'.repeat(LIMITS.maxHeaderBytes - base.length)}`);
    expect(exact.length).toBe(LIMITS.maxHeaderBytes);
    expect('head' in req(exact)).toBe(true);
    const over = exact.replace('X-Pad: ', 'X-Pad: p');
    expect(req(over)).toEqual({ rejected: 'header_too_large' });
  });

  test('an unterminated head is refused as soon as it passes the limit, not kept waiting', () => {
    expect(req(`GET / HTTP/1.1\r\nX-A: ${'a'.repeat(LIMITS.maxHeaderBytes)}`)).toEqual({ rejected: 'header_too_large' });
    expect(req(`GET /${'a'.repeat(LIMITS.maxHeaderBytes - 10)}`)).toEqual({ incomplete: true });
  });

  test('endless empty lines before a request are bounded by the size limit', () => {
    expect(req('\r\n'.repeat(LIMITS.maxHeaderBytes))).toEqual({ rejected: 'header_too_large' });
  });

  test('maxHeaders: exactly the limit passes, one more is refused', () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join('');
    expect('head' in req(`GET / HTTP/1.1\r\n${lines(LIMITS.maxHeaders)}\r\n`)).toBe(true);
    expect(req(`GET / HTTP/1.1\r\n${lines(LIMITS.maxHeaders + 1)}\r\n`)).toEqual({ rejected: 'too_many_headers' });
  });

  test('response heads use the limits they are given', () => {
    expect(res(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(100)}\r\n\r\n`, { maxHeaderBytes: 64, maxHeaders: 8 })).toEqual({ rejected: 'header_too_large' });
  });
});

describe('malformed heads → bad_request', () => {
  test.each([
    // request lines
    ['no spaces', 'GET\r\nHost: a\r\n\r\n'],
    ['only one space', 'GET /\r\nHost: a\r\n\r\n'],
    ['empty method', ' / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces between method and target', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['space inside the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['tab as separator', 'GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['method with a bad character', 'G(ET / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['control character in the target', 'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['non-ASCII in the target', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n'],
    // RFC 9112 section 3.2: no fragment in a request target, wherever the "#" is.
    ['fragment in the target', 'GET /public/x#/../../admin HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['fragment after a query', 'GET /public?q=1#/../admin HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['bare fragment', 'GET # HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['fragment in an absolute-form target', 'GET http://a/b#c HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['HTTP/2.0 version', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n'],
    ['HTTP/1.2 version', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n'],
    ['lower-case version', 'GET / http/1.1\r\nHost: a\r\n\r\n'],
    ['trailing space after version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n'],
    ['HTTP/0.9 style', 'GET /\r\n\r\n'],
    ['bare LF line ending', 'GET / HTTP/1.1\nHost: a\r\n\r\n'],
    // header names
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['tab before colon', 'GET / HTTP/1.1\r\nHost\t: a\r\n\r\n'],
    ['empty name', 'GET / HTTP/1.1\r\n: a\r\n\r\n'],
    ['no colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n'],
    ['name with a slash', 'GET / HTTP/1.1\r\nX/Y: a\r\n\r\n'],
    ['name with NUL', 'GET / HTTP/1.1\r\nX\x00Y: a\r\n\r\n'],
    ['name with non-ASCII', 'GET / HTTP/1.1\r\nX\xe9: a\r\n\r\n'],
    ['obs-fold continuation (space)', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n'],
    ['obs-fold continuation (tab)', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n'],
    ['obs-fold that looks like a header', 'GET / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n'],
    ['leading whitespace on the first header', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n'],
    // header values
    ['bare CR inside a value', 'GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n'],
    ['bare LF inside a value', 'GET / HTTP/1.1\r\nHost: a\nX-Injected: 1\r\n\r\n'],
    ['NUL inside a value', 'GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n'],
    ['DEL inside a value', 'GET / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n'],
    ['vertical tab inside a value', 'GET / HTTP/1.1\r\nHost: a\x0bb\r\n\r\n'],
    ['escape inside a value', 'GET / HTTP/1.1\r\nHost: a\x1bb\r\n\r\n'],
    // Only SP and HTAB are optional whitespace: other control characters at the edges are not trimmed away.
    ['vertical tab at the end of a value', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n'],
    ['form feed at the start of a value', 'GET / HTTP/1.1\r\nHost: \x0ca\r\n\r\n'],
    // llhttp reads "chunked<HTAB>" as another coding; found by the differential property.
    ['a tab after chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n'],
    // Targets llhttp refuses or tunnels: authority-form outside CONNECT, CONNECT itself, a relative reference.
    ['authority-form target on GET', 'GET h:443 HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['CONNECT', 'CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a target without a leading slash', 'GET a HTTP/1.1\r\nHost: a\r\n\r\n'],
    // Absolute-form as llhttp reads it (found by the differential property): a scheme of letters only, an authority of
    // RFC 3986's characters.
    ...['h0ttp', 'h-t', 'h.t', 'h+t', 'ab1'].map((scheme) => [`scheme ${scheme}`, `GET ${scheme}://h/p HTTP/1.1\r\nHost: a\r\n\r\n`] as [string, string]),
    ...['"', '{', '}', '|', '\\', '^', '`', '<', '>'].map((c) => [`${c} in the authority`, `GET http://h${c}/p HTTP/1.1\r\nHost: a\r\n\r\n`] as [string, string]),
  ])('%s', (_name, text) => {
    expect(req(text)).toEqual({ rejected: 'bad_request' });
  });

  test.each([
    ['unknown version', 'HTTP/2.0 200 OK\r\n\r\n'],
    ['status too short', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['status not a number', 'HTTP/1.1 abc OK\r\n\r\n'],
    ['status below 100', 'HTTP/1.1 099 OK\r\n\r\n'],
    ['status above 599', 'HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n'],
    ['status 999', 'HTTP/1.1 999 Odd\r\n\r\n'],
    ['missing space after version', 'HTTP/1.1200 OK\r\n\r\n'],
    ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n'],
    ['exponent notation status', 'HTTP/1.1 1e2 OK\r\n\r\n'],
    ['status with a sign', 'HTTP/1.1 +99 OK\r\n\r\n'],
    ['bad header in a response', 'HTTP/1.1 200 OK\r\nX Y: 1\r\n\r\n'],
    // Found by the differential property (llhttp refuses them; a client that honoured one would desync).
    ['bare LF in the reason phrase', 'HTTP/1.1 200 OK\nX-A: v\r\n\r\n'],
    ['103 Early Hints with a length', 'HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n'],
    ['100 Continue with Transfer-Encoding', 'HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['103 Early Hints in HTTP/1.0', 'HTTP/1.0 103 Early Hints\r\nLink: </a>\r\n\r\n'],
    ['100 Continue in HTTP/1.0, even one that keeps the connection', 'HTTP/1.0 100 Continue\r\nConnection: keep-alive\r\n\r\n'],
    ['101 Switching Protocols in HTTP/1.0', 'HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n'],
  ])('response: %s', (_name, text) => {
    expect(res(text)).toEqual({ rejected: 'bad_request' });
  });
});

describe('request framing (smuggling vectors)', () => {
  const framing = (headers: string, version = 'HTTP/1.1') => requestFraming(head(`POST / ${version}\r\nHost: a\r\n${headers}\r\n`));

  test.each([
    ['no body headers', '', { kind: 'none' }],
    ['content-length 0', 'Content-Length: 0\r\n', { kind: 'none' }],
    ['content-length', 'Content-Length: 42\r\n', { kind: 'length', length: 42 }],
    ['content-length with leading zeros', 'Content-Length: 007\r\n', { kind: 'length', length: 7 }],
    ['chunked', 'Transfer-Encoding: chunked\r\n', { kind: 'chunked' }],
    ['chunked in another case', 'Transfer-Encoding: ChUnKeD\r\n', { kind: 'chunked' }],
  ])('%s', (_name, headers, expected) => {
    expect(framing(headers)).toEqual(expected);
  });

  test.each([
    ['TE + CL', 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n'],
    ['CL + TE (order reversed)', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'],
    ['CL 0 + TE', 'Content-Length: 0\r\nTransfer-Encoding: chunked\r\n'],
    ['two different content-lengths', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
    // llhttp (Node's parser, so most apps behind us) refuses a repeated Content-Length even with equal values.
    ['identical repeated content-length', 'Content-Length: 5\r\nContent-Length: 5\r\n'],
    ['identical comma-joined content-length', 'Content-Length: 5, 5\r\n'],
    ['different comma-joined content-lengths', 'Content-Length: 5, 6\r\n'],
    ['negative content-length', 'Content-Length: -1\r\n'],
    ['signed content-length', 'Content-Length: +5\r\n'],
    ['hex content-length', 'Content-Length: 0x5\r\n'],
    ['content-length with a space inside', 'Content-Length: 1 2\r\n'],
    ['empty content-length', 'Content-Length:\r\n'],
    ['content-length beyond 15 digits', `Content-Length: ${'9'.repeat(16)}\r\n`],
    ['content-length with exponent', 'Content-Length: 1e3\r\n'],
  ])('%s → bad_request', (_name, headers) => {
    expect(framing(headers)).toBe('bad_request');
  });

  test('Transfer-Encoding on HTTP/1.0 is refused (an HTTP/1.0 recipient would ignore it)', () => {
    expect(framing('Transfer-Encoding: chunked\r\n', 'HTTP/1.0')).toBe('bad_request');
  });

  test.each([
    ['gzip only', 'Transfer-Encoding: gzip\r\n'],
    ['chunked not last', 'Transfer-Encoding: chunked, gzip\r\n'],
    ['chunked not last, across two fields', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n'],
    ['identity', 'Transfer-Encoding: identity\r\n'],
    ['chunked with junk', 'Transfer-Encoding: xchunked\r\n'],
    ['chunked with a parameter', 'Transfer-Encoding: chunked;q=1\r\n'],
    // llhttp refuses these outright: passing them on would split the readings.
    ['chunked twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
    ['an empty element after chunked', 'Transfer-Encoding: chunked,\r\n'],
    ['an empty field before chunked', 'Transfer-Encoding: \r\nTransfer-Encoding: chunked\r\n'],
  ])('TE %s → bad_request (no final chunked: the length cannot be known)', (_name, headers) => {
    expect(framing(headers)).toBe('bad_request');
  });

  test.each([
    ['gzip then chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ['gzip then chunked, across two fields', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n'],
  ])('TE %s → not_implemented (valid framing, codings the proxy does not apply)', (_name, headers) => {
    expect(framing(headers)).toBe('not_implemented');
  });

  test('an empty Transfer-Encoding together with Content-Length is refused, not read as plain CL', () => {
    // The header is forwarded as is; a recipient that treats any Transfer-Encoding as chunked would disagree
    // with a proxy that framed the body by Content-Length.
    expect(framing('Transfer-Encoding: \r\nContent-Length: 5\r\n')).toBe('bad_request');
    expect(framing('Transfer-Encoding: ,\r\nContent-Length: 5\r\n')).toBe('bad_request');
    expect(framing('Transfer-Encoding:\r\n')).toBe('bad_request');
  });

  test('NBSP (obs-text) around a framing value is part of the value, not whitespace', () => {
    // The value is forwarded as is, so the proxy must read it as the next hop will.
    expect(framing('Transfer-Encoding: chunked\xa0\r\n')).toBe('bad_request');
    expect(framing('Content-Length: \xa05\r\n')).toBe('bad_request');
  });
});

describe('response framing', () => {
  const rf = (text: string, method = 'GET') => responseFraming(head(text, 'response'), method);

  test.each([
    ['HEAD with content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', 'HEAD', { kind: 'none' }],
    ['HEAD with chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'HEAD', { kind: 'none' }],
    ['204 with content-length', 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n', 'GET', { kind: 'none' }],
    ['304 with content-length', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', 'GET', { kind: 'none' }],
    ['100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n', 'POST', { kind: 'none' }],
    ['200 content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'GET', { kind: 'length', length: 10 }],
    ['200 content-length 0', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'GET', { kind: 'none' }],
    ['200 chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'GET', { kind: 'chunked' }],
    ['200 gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'GET', { kind: 'chunked' }],
    ['200 no length → until close', 'HTTP/1.1 200 OK\r\n\r\n', 'GET', { kind: 'close' }],
    ['404 with body', 'HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n', 'POST', { kind: 'length', length: 9 }],
  ])('%s', (_name, text, method, expected) => {
    expect(rf(text, method)).toEqual(expected);
  });

  test.each([
    ['conflicting content-lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'],
    ['non-numeric content-length', 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n'],
    // RFC 9112 section 6.3: the same framing rules as requests (a CL-trusting client or cache would desync).
    ['chunked + content-length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n'],
    ['content-length + chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['identical repeated content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n'],
    ['identical comma-joined content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n'],
    ['TE not ending in chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'],
    ['TE chunked then gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n'],
    ['empty TE', 'HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n'],
    ['TE on an HTTP/1.0 response', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ])('%s → bad_request', (_name, text) => {
    expect(rf(text)).toBe('bad_request');
  });

  test.each([
    ['HEAD answered with CL + TE', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 'HEAD'],
    ['204 with conflicting content-lengths', 'HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'GET'],
    ['304 with CL + TE', 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 'GET'],
  ])('bodiless but ambiguous: %s → bad_request', (_name, text, method) => {
    expect(rf(text, method)).toBe('bad_request');
  });
});

describe('header helpers and keep-alive', () => {
  test('headerValue returns the first value; headerTokens splits, trims and lower-cases every value', () => {
    const h = head('GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive , X-Foo\r\nConnection: ,close,\r\n\r\n');
    expect(headerValue(h, 'connection')).toBe('Keep-Alive , X-Foo');
    expect(headerValue(h, 'absent')).toBeUndefined();
    expect(headerTokens(h, 'connection')).toEqual(['keep-alive', 'x-foo', 'close']);
  });

  test.each([
    ['HTTP/1.1 default', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', true],
    ['HTTP/1.1 close', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', false],
    ['HTTP/1.1 close among tokens', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, Close\r\n\r\n', false],
    ['HTTP/1.0 default', 'GET / HTTP/1.0\r\n\r\n', false],
    ['HTTP/1.0 keep-alive', 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', true],
  ])('%s', (_name, text, expected) => {
    expect(wantsKeepAlive(head(text))).toBe(expected);
  });
});

describe('tokens read in place (hasToken) agree with the token list (headerTokens)', () => {
  test('generated Connection values', async () => {
    const fc = (await import('fast-check')).default;
    const { hasToken } = await import('../../../../proxy/src/http1/http1-head.js');
    const piece = fc.constantFrom('close', 'Close', 'CLOSE', 'keep-alive', 'Keep-Alive', 'upgrade', 'UpGrade', ' ', '\t', ',', 'x', 'closed', 'keep-alivex', '\xe9', 'k\xc9ep-alive');
    const value = fc.array(piece, { maxLength: 8 }).map((a) => a.join(''));
    fc.assert(
      fc.property(fc.array(value, { minLength: 0, maxLength: 3 }), (values) => {
        const h: HttpHead = { minor: 1, names: values.map(() => 'connection'), values: values.map((v) => v.replace(/^[ \t]+|[ \t]+$/g, '')), length: 0 };
        for (const t of ['close', 'keep-alive', 'upgrade']) expect(hasToken(h, 'connection', t)).toBe(headerTokens(h, 'connection').includes(t));
      }),
      { seed: 0x70c3, numRuns: 2000 },
    );
  });
});

describe('the end of a head is found alike in small reads (searched as text) and large ones (searched as bytes)', () => {
  const limits: HeadLimits = { maxHeaderBytes: 16 * 1024, maxHeaders: 100 };
  test.each([100, 2000, 2040, 2048, 2049, 2100, 5000])('head of about %i bytes, alone and followed by a body', (size) => {
    const pad = 'x'.repeat(Math.max(0, size - 40));
    const text = `POST /p HTTP/1.1\r\nHost: a\r\nX-Pad: ${pad}\r\nContent-Length: 3000\r\n\r\n`;
    for (const tail of ['', 'b'.repeat(10), 'b'.repeat(3000)]) {
      const r = parseHead(Buffer.from(text + tail, 'latin1'), 0, 'request', limits);
      expect('head' in r && r.head.length).toBe(text.length);
      expect('head' in r && r.head.values).toEqual(['a', pad, '3000']);
      // Cut before the end: more bytes are needed, whichever way it is searched.
      expect(parseHead(Buffer.from(text.slice(0, -1), 'latin1'), 0, 'request', limits)).toEqual({ incomplete: true });
    }
  });
  test('a head not ended within the limit is too large either way', () => {
    const small = { maxHeaderBytes: 1000, maxHeaders: 100 };
    expect(parseHead(Buffer.from(`GET / HTTP/1.1\r\nX: ${'y'.repeat(1500)}`, 'latin1'), 0, 'request', small)).toEqual({ rejected: 'header_too_large' });
    expect(parseHead(Buffer.from(`GET / HTTP/1.1\r\nX: ${'y'.repeat(3000)}`, 'latin1'), 0, 'request', small)).toEqual({ rejected: 'header_too_large' });
  });
});
