// Heads rebuilt on the way through: the target the policy decided on replaces the client's, HTTP/1.0 stays
// HTTP/1.0 upstream (no empty Host invented), and an HTTP/1.0 client is told when its connection stays open.
import { describe, expect, test } from 'vitest';
import { downstreamResponseHead, interimHeadWithout, responseNeedsRewrite, upstreamRequestHead } from '../../../../proxy/src/http1/head-rewrite.js';
import { type HttpHead, parseHead } from '../../../../proxy/src/http1/http1-head.js';

function head(text: string, kind: 'request' | 'response' = 'request'): HttpHead {
  const r = parseHead(Buffer.from(text, 'latin1'), 0, kind, { maxHeaderBytes: 4096, maxHeaders: 20 });
  if (!('head' in r)) throw new Error(JSON.stringify(r));
  return r.head;
}

describe('upstreamRequestHead', () => {
  test('HTTP/1.1: hop-by-hop and stripped headers go, the added ones and the plan target come in', () => {
    const h = head('GET /v1/../admin?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close, x-hop\r\nX-Hop: 1\r\nX-Forwarded-Client-Cert: forged\r\nAccept: */*\r\n\r\n');
    const out = upstreamRequestHead(h, { strip: new Set(['x-forwarded-client-cert']), add: 'x-forwarded-client-cert: real\r\n', target: '/admin?q=1' }).toString('latin1');
    expect(out).toBe('GET /admin?q=1 HTTP/1.1\r\nhost: a\r\naccept: */*\r\nx-forwarded-client-cert: real\r\n\r\n');
  });

  test('HTTP/1.0 without Host goes as HTTP/1.0 without Host, asking to keep the pooled connection', () => {
    const out = upstreamRequestHead(head('GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'), { add: '' }).toString('latin1');
    expect(out).toBe('GET /x HTTP/1.0\r\nconnection: keep-alive\r\n\r\n');
    expect(out).not.toMatch(/host:/i);
  });

  test('an allowed upgrade keeps Upgrade and Connection: upgrade (only those), other hop-by-hop headers still go', () => {
    const h = head('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, keep-alive\r\nUpgrade: websocket\r\nHTTP2-Settings: x\r\nSec-WebSocket-Key: k\r\n\r\n');
    expect(upstreamRequestHead(h, { add: 'x-forwarded-client-cert: real\r\n' }, 'websocket').toString('latin1')).toBe(
      'GET /chat HTTP/1.1\r\nhost: a\r\nsec-websocket-key: k\r\nconnection: upgrade\r\nupgrade: websocket\r\nx-forwarded-client-cert: real\r\n\r\n',
    );
    // Not allowed (no upgrade given): a plain request, the upgrade headers dropped as hop-by-hop.
    expect(upstreamRequestHead(h, { add: '' }).toString('latin1')).toBe('GET /chat HTTP/1.1\r\nhost: a\r\nsec-websocket-key: k\r\n\r\n');
  });
});

describe('fields a Connection header may not take away', () => {
  test('Content-Length, Transfer-Encoding and Host stay when named, in any case and position; other named fields go', () => {
    for (const connection of ['content-length', 'Content-Length, x-hop', 'x-hop ,HOST', 'keep-alive, transfer-encoding, content-length, host, x-hop']) {
      const h = head(`POST /v1 HTTP/1.1\r\nHost: a\r\nConnection: ${connection}\r\nContent-Length: 2\r\nX-Hop: 1\r\n\r\n`);
      const hop = /x-hop/.test(connection) ? '' : 'x-hop: 1\r\n';
      expect(upstreamRequestHead(h, { add: '' }).toString('latin1'), connection).toBe(`POST /v1 HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n${hop}\r\n`);
    }
  });

  test("a response naming its own Content-Length keeps it (its framing is what the client reads)", () => {
    const res = head('HTTP/1.1 200 OK\r\nConnection: content-length, x-hop\r\nContent-Length: 2\r\nX-Hop: 1\r\n\r\n', 'response');
    expect(downstreamResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n', 'latin1'), res, false, false).toString('latin1')).toBe('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n');
  });
});

describe('response fields a listener drops (an app-facing one: what only the proxy may say)', () => {
  test('a head carrying one is rebuilt without it; a head without one still goes byte for byte', () => {
    const drop = new Set(['x-tessera-error', 'x-forwarded-client-cert']);
    const forged = head('HTTP/1.1 403 Forbidden\r\nX-Tessera-Error: authz_denied\r\nContent-Length: 2\r\nX-Forwarded-Client-Cert: By=x\r\n\r\n', 'response');
    expect(responseNeedsRewrite(forged, false, false, null, drop)).toBe(true);
    expect(downstreamResponseHead(Buffer.from('HTTP/1.1 403 Forbidden\r\n', 'latin1'), forged, false, false, null, drop).toString('latin1')).toBe('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\n');
    expect(responseNeedsRewrite(head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n', 'response'), false, false, null, drop)).toBe(false);
  });
});

describe('interim and 101 heads without the dropped fields', () => {
  test("a 101 keeps its Upgrade and Connection, loses only the named fields; a head without them is left alone (null)", () => {
    const text = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Tessera-Error: x\r\n\r\n';
    const drop = new Set(['x-tessera-error', 'x-forwarded-client-cert']);
    expect(interimHeadWithout(Buffer.from(text, 'latin1'), head(text, 'response'), drop)?.toString('latin1')).toBe('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    const plain = 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n';
    expect(interimHeadWithout(Buffer.from(plain, 'latin1'), head(plain, 'response'), drop)).toBeNull();
  });
});

describe('upstreamRequestHead from the bytes as sent', () => {
  const limits = { maxHeaderBytes: 4096, maxHeaders: 20 };
  const parsed = (text: string) => {
    const raw = Buffer.from(text, 'latin1');
    const r = parseHead(raw, 0, 'request', limits);
    if (!('head' in r)) throw new Error(JSON.stringify(r));
    return { raw, h: r.head };
  };
  const xfcc = { strip: new Set(['x-forwarded-client-cert']), add: 'x-forwarded-client-cert: real\r\n' };

  test('nothing to drop: the head as sent (names as spelled, the body after it left out), the added lines before its end', () => {
    const { raw, h } = parsed('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi');
    expect(upstreamRequestHead(h, xfcc, null, raw).toString('latin1')).toBe('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nx-forwarded-client-cert: real\r\n\r\n');
    expect(upstreamRequestHead(h, { add: '' }, null, raw).toString('latin1')).toBe('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n');
  });

  test('a field to strip, a hop-by-hop field, a new target, HTTP/1.0, an upgrade or leading empty lines: rebuilt as before', () => {
    const cases: [string, Parameters<typeof upstreamRequestHead>[1], string | null][] = [
      ['GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: forged\r\n\r\n', xfcc, null],
      ['GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n', xfcc, null],
      ['GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n', xfcc, null],
      ['GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n', { ...xfcc, target: '/b' }, null],
      ['GET / HTTP/1.0\r\nHost: a\r\n\r\n', xfcc, null],
      ['GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n', xfcc, 'websocket'],
      ['\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', xfcc, null],
    ];
    for (const [text, plan, upgrade] of cases) {
      const { raw, h } = parsed(text);
      const out = upstreamRequestHead(h, plan, upgrade, raw).toString('latin1');
      expect(out).toBe(upstreamRequestHead(h, plan, upgrade).toString('latin1'));
      expect(out).not.toContain('forged');
      expect(out.startsWith('\r\n')).toBe(false);
    }
  });
});

describe('downstream response heads', () => {
  const res = head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\n', 'response');
  const raw = Buffer.from('HTTP/1.1 200 OK\r\n', 'latin1');

  test('to an HTTP/1.0 client that keeps its connection: said so', () => {
    expect(responseNeedsRewrite(res, false, true)).toBe(true);
    expect(downstreamResponseHead(raw, res, false, true).toString('latin1')).toBe('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n');
  });

  test('closing: connection: close, whatever the client version', () => {
    for (const http10 of [false, true]) expect(downstreamResponseHead(raw, res, true, http10).toString('latin1')).toBe('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n');
  });

  test('HTTP/1.1 and nothing hop-by-hop: forwarded byte for byte', () => {
    expect(responseNeedsRewrite(head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n', 'response'), false, false)).toBe(false);
  });

  test('"Connection: keep-alive" alone is true of this hop too: kept; any other connection option or hop-by-hop field: rebuilt', () => {
    expect(responseNeedsRewrite(head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\n', 'response'), false, false)).toBe(false);
    for (const extra of ['Connection: keep-alive, x-hop\r\nX-Hop: 1', 'Connection: close', 'Connection: keep-alive\r\nKeep-Alive: timeout=5', 'Upgrade: h2c']) {
      expect(responseNeedsRewrite(head(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${extra}\r\n\r\n`, 'response'), false, false)).toBe(true);
    }
    // Closing, or to an HTTP/1.0 client: rebuilt, the app's keep-alive replaced by what is true of this hop.
    const ka = head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n', 'response');
    expect(responseNeedsRewrite(ka, true, false)).toBe(true);
    expect(downstreamResponseHead(raw, ka, true, false).toString('latin1')).toBe('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n');
  });
});
