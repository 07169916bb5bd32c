// A forward proxy's CONNECT head, by family: authorities (ports, IPv6 brackets, Kubernetes names) accepted, bad
// request lines and control characters refused (400), heads over the size limit refused (431) at the exact
// boundary, every split of a head across chunks incomplete until its end; and readFirstRequest on real sockets:
// CONNECT with early tunnel bytes, anything else put back untouched, rejections, timeout and a client that leaves.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { type ConnectHead, mayBeConnect, parseConnectHead } from '../../../../proxy/src/http1/connect-head.js';
import { type FirstRequest, readFirstRequest } from '../../../../proxy/src/listeners/connect-sniff.js';
import { type Cleanup, listenLoopback } from '../../../helpers/http1-session-harness.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const MAX = 8_192;
const parse = (text: string, max = MAX): ConnectHead => parseConnectHead(Buffer.from(text, 'latin1'), max);
const connect = (authority: string, headers = 'host: x\r\n') => `CONNECT ${authority} HTTP/1.1\r\n${headers}\r\n`;

describe('parseConnectHead', () => {
  test.each(['api:443', 'api.default:8080', 'api.default.svc.cluster.local:443', 'API.Default:1', 'api.default.:443', '127.0.0.1:15001', '[::1]:443', '[2001:db8::1]:65535', 'a-b_c:80'])('%s is a CONNECT authority', (authority) => {
    const text = connect(authority);
    expect(parse(text)).toEqual({ authority, length: text.length });
  });

  test('HTTP/1.0, no header lines, tabs and obs-text in header values are accepted; the length ends at the head', () => {
    expect(parse('CONNECT api:443 HTTP/1.0\r\n\r\n')).toEqual({ authority: 'api:443', length: 28 });
    const head = 'CONNECT api:443 HTTP/1.1\r\nuser-agent: a\tb \xe9\xff\r\n\r\n';
    expect(parse(`${head}\x16\x03\x01early tunnel bytes\r\n\r\n`)).toEqual({ authority: 'api:443', length: head.length });
  });

  test.each([
    // the request line
    'connect api:443 HTTP/1.1',
    'CONNECTapi:443 HTTP/1.1',
    'CONNECT  api:443 HTTP/1.1',
    'CONNECT api:443  HTTP/1.1',
    'CONNECT api:443 HTTP/1.1 ',
    ' CONNECT api:443 HTTP/1.1',
    'CONNECT\tapi:443 HTTP/1.1',
    'CONNECT api:443',
    'CONNECT api:443 HTTP/1.2',
    'CONNECT api:443 HTTP/2.0',
    'CONNECT api:443 HTTP/2',
    'CONNECT api:443 http/1.1',
    'CONNECT api:443 HTTP/1.1x',
    'CONNECT HTTP/1.1',
    'GET / HTTP/1.1',
    // the authority: port required and possible, no userinfo, scheme, path or garbage
    'CONNECT api HTTP/1.1',
    'CONNECT api: HTTP/1.1',
    'CONNECT :443 HTTP/1.1',
    'CONNECT api:123456 HTTP/1.1',
    'CONNECT api:0 HTTP/1.1',
    'CONNECT api:65536 HTTP/1.1',
    'CONNECT api:99999 HTTP/1.1',
    'CONNECT [::1]:0 HTTP/1.1',
    'CONNECT user@api:443 HTTP/1.1',
    'CONNECT http://api:443 HTTP/1.1',
    'CONNECT api:443/x HTTP/1.1',
    'CONNECT / HTTP/1.1',
    'CONNECT * HTTP/1.1',
    'CONNECT ::1:443 HTTP/1.1',
    'CONNECT [::1]443 HTTP/1.1',
    'CONNECT [::1 HTTP/1.1',
    'CONNECT api%2e:443 HTTP/1.1',
    'CONNECT api:44a HTTP/1.1',
  ])('%j is a bad request', (line) => {
    expect(parse(`${line}\r\nhost: x\r\n\r\n`)).toEqual({ rejected: 'bad_request' });
  });

  test.each([
    ['NUL', '\x00'],
    ['bare LF', '\n'],
    ['bare CR', '\r'],
    ['ESC', '\x1b'],
    ['DEL', '\x7f'],
    ['BEL', '\x07'],
    ['vertical tab', '\x0b'],
  ])('a %s in the request line or a header line is a bad request', (_, ctl) => {
    expect(parse(`CONNECT api:443${ctl} HTTP/1.1\r\n\r\n`)).toEqual({ rejected: 'bad_request' });
    expect(parse(`CONNECT api:443 HTTP/1.1\r\nx-a: b${ctl}c\r\n\r\n`)).toEqual({ rejected: 'bad_request' });
    expect(parse(`CONNECT api:443 HTTP/1.1\r\nx-a: b\r\n${ctl}x-b: c\r\n\r\n`)).toEqual({ rejected: 'bad_request' });
  });

  test('every prefix of a head is incomplete, the whole head is complete (a head split anywhere across chunks)', () => {
    const text = connect('api.default.svc.cluster.local:443', 'host: api.default.svc.cluster.local:443\r\nproxy-authorization: basic eA==\r\n');
    for (let i = 0; i < text.length; i++) expect(parse(text.slice(0, i))).toEqual({ incomplete: true });
    expect(parse(text)).toEqual({ authority: 'api.default.svc.cluster.local:443', length: text.length });
  });

  test('the size limit is exact: a head of max bytes passes, max + 1 is 431, complete or not', () => {
    const base = connect('api:443', 'x-pad: \r\n');
    const exact = connect('api:443', `x-pad: ${'p'.repeat(100 - base.length)}\r\n`);
    expect(exact.length).toBe(100);
    expect(parse(exact, 100)).toEqual({ authority: 'api:443', length: 100 });
    const over = connect('api:443', `x-pad: ${'p'.repeat(101 - base.length)}\r\n`);
    expect(parse(over, 100)).toEqual({ rejected: 'header_too_large' });
    // Incomplete, but already past the limit: refused without waiting for its end.
    expect(parse(`CONNECT api:443 HTTP/1.1\r\nx-pad: ${'p'.repeat(200)}`, 100)).toEqual({ rejected: 'header_too_large' });
    expect(parse(`CONNECT api:443 HTTP/1.1\r\nx-pad: ${'p'.repeat(50)}`, 100)).toEqual({ incomplete: true });
    // Tunnel bytes after a head within the limit do not count against it.
    expect(parse(exact + 'z'.repeat(500), 100)).toEqual({ authority: 'api:443', length: 100 });
  });

  test('a bad head is refused even when it is also over the limit only after the terminator (431 wins past the limit)', () => {
    expect(parse(`CONNECT api HTTP/1.1\r\nx: ${'p'.repeat(200)}\r\n\r\n`, 100)).toEqual({ rejected: 'header_too_large' });
  });
});

describe('mayBeConnect', () => {
  test.each(['', 'C', 'CO', 'CONN', 'CONNECT', 'CONNECT ', 'CONNECT api:443 HTTP/1.1\r\n'])('%j may still be a CONNECT', (t) => {
    expect(mayBeConnect(Buffer.from(t, 'latin1'))).toBe(true);
  });
  test.each(['G', 'GET / HTTP/1.1', 'c', 'connect ', 'CONNECTX', 'CONNECT\t', 'CONX', ' CONNECT', '\r\nCONNECT ', 'PRI * HTTP/2.0'])('%j is not a CONNECT', (t) => {
    expect(mayBeConnect(Buffer.from(t, 'latin1'))).toBe(false);
  });
});

describe('readFirstRequest on a real socket', () => {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /**
   * A server that sniffs each connection's first request; `afterHttp` collects what the socket yields after an
   * 'http' result (the bytes must be put back untouched).
   */
  async function sniffer(limits = { headersTimeoutMs: 2_000, maxHeaderBytes: 256 }) {
    const results: FirstRequest[] = [];
    let afterHttp = '';
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      cleanups.push(() => s.destroy());
      readFirstRequest(s, limits, realTimers, (r) => {
        results.push(r);
        if (r.kind === 'http') {
          s.on('data', (d: Buffer) => {
            afterHttp += d.toString('latin1');
          });
          s.resume();
        }
      });
    });
    const port = await listenLoopback(server, cleanups);
    return { port, results, afterHttp: () => afterHttp };
  }

  async function clientWrites(port: number, parts: readonly (string | number)[], end = false): Promise<net.Socket> {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    cleanups.push(() => c.destroy());
    await new Promise<void>((r) => c.once('connect', () => r()));
    for (const p of parts) {
      if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
      else c.write(Buffer.from(p, 'latin1'));
    }
    if (end) c.end();
    return c;
  }

  test('a CONNECT head split inside the method, the authority and the terminator, with early tunnel bytes', async () => {
    const s = await sniffer();
    await clientWrites(s.port, ['CONN', 30, 'ECT api.def', 30, 'ault:443 HTTP/1.1\r\nhost: api\r\n\r', 30, '\n\x16\x03\x01hello']);
    await until('a result', () => s.results.length === 1, 5_000, 10);
    const r = s.results[0]!;
    expect(r.kind).toBe('connect');
    if (r.kind !== 'connect') return;
    expect(r.authority).toBe('api.default:443');
    // The early bytes may arrive with the head or after it; whatever came with it is handed over, nothing else.
    expect(r.rest === null || '\x16\x03\x01hello'.startsWith(r.rest.toString('latin1'))).toBe(true);
  });

  test('a CONNECT head and its early bytes in one write: the early bytes are the rest', async () => {
    const s = await sniffer();
    await clientWrites(s.port, ['CONNECT [::1]:8443 HTTP/1.1\r\n\r\nEARLY']);
    await until('a result', () => s.results.length === 1, 5_000, 10);
    expect(s.results[0]).toMatchObject({ kind: 'connect', authority: '[::1]:8443' });
    expect((s.results[0] as { rest: Buffer }).rest.toString()).toBe('EARLY');
  });

  test.each([
    ['a GET in one write', ['GET /x HTTP/1.1\r\nhost: api\r\n\r\n']],
    ['a GET split after one byte', ['G', 30, 'ET /x HTTP/1.1\r\nhost: api\r\n\r\n']],
    ['a prefix of CONNECT that turns out not to be one', ['CON', 30, 'NX /x HTTP/1.1\r\nhost: api\r\n\r\n']],
    ['an absolute-form GET', ['GET http://api.default/x HTTP/1.1\r\nhost: api.default\r\n\r\n']],
  ])('%s is put back untouched for the HTTP/1.1 session', async (_, parts) => {
    const s = await sniffer();
    await clientWrites(s.port, parts);
    const all = parts.filter((p) => typeof p === 'string').join('');
    await until('every byte re-read', () => s.afterHttp() === all, 5_000, 10);
    expect(s.results).toEqual([{ kind: 'http' }]);
  });

  test.each([
    ['a bad request line', ['CONNECT api HTTP/1.1\r\n\r\n'], { kind: 'rejected', status: 400, reason: 'bad_request' }],
    ['a CTL in a header', ['CONNECT api:443 HTTP/1.1\r\nx: \x01\r\n\r\n'], { kind: 'rejected', status: 400, reason: 'bad_request' }],
    ['an oversized head, complete', [`CONNECT api:443 HTTP/1.1\r\nx: ${'p'.repeat(300)}\r\n\r\n`], { kind: 'rejected', status: 431, reason: 'header_too_large' }],
    ['an oversized head that never ends, in chunks', ['CONNECT api:443 HTTP/1.1\r\n', 20, `x: ${'p'.repeat(150)}`, 20, 'p'.repeat(150)], { kind: 'rejected', status: 431, reason: 'header_too_large' }],
  ])('%s is rejected', async (_, parts, expected) => {
    const s = await sniffer();
    await clientWrites(s.port, parts as (string | number)[]);
    await until('a result', () => s.results.length === 1, 5_000, 10);
    expect(s.results).toEqual([expected]);
  });

  test('a head that stalls, or a silent connection, times out', async () => {
    const s = await sniffer({ headersTimeoutMs: 150, maxHeaderBytes: 256 });
    await clientWrites(s.port, ['CONNECT api:443 HTTP/1.1\r\n']);
    await clientWrites(s.port, []);
    await until('two results', () => s.results.length === 2, 5_000, 10);
    expect(s.results).toEqual([{ kind: 'timeout' }, { kind: 'timeout' }]);
  });

  test('a client that leaves mid-head is closed, once', async () => {
    const s = await sniffer();
    await clientWrites(s.port, ['CONNECT api:4'], true);
    const c = await clientWrites(s.port, ['CONN']);
    await new Promise((r) => setTimeout(r, 30));
    c.destroy();
    await until('two results', () => s.results.length === 2, 5_000, 10);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.results).toEqual([{ kind: 'closed' }, { kind: 'closed' }]);
  });
});
