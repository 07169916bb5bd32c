// Upgrades through Http1Session on loopback sockets: decided by the plan like any request (501 when the plan does
// not allow them, the plan's own answer when it refuses), the app's 101 relayed and then bytes both ways with
// half-close and back-pressure; the upstream connection never goes back to the pool; a 200 answer keeps HTTP; only
// protocols on the session's allow-list switch, any other offer goes on as a plain request; an unasked 101 is a bad
// upstream response; an idle tunnel is cut by streamIdleTimeout.
import { afterEach, describe, expect, test } from 'vitest';
import { type Cleanup, HARNESS_LIMITS, client, collect, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { oneResponse, rawHttp } from '../../../helpers/raw-http.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const UPGRADE = 'GET /chat HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket\r\nHTTP2-Settings: x\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n';

/** An app that switches on the first request, then echoes in upper case; `heads` holds the heads it received. */
async function switchingApp() {
  const heads: string[] = [];
  const app = await rawApp(cleanups, (s) => {
    let upgraded = false;
    s.on('data', (d: Buffer) => {
      if (upgraded) {
        s.write(d.toString('latin1').toUpperCase());
        return;
      }
      heads.push(d.toString('latin1'));
      upgraded = true;
      s.write(`${SWITCH}hello`);
    });
  });
  return { ...app, heads };
}

describe('Http1Session upgrades', () => {
  test('101 relayed, bytes both ways, half-close each way, one request (101) and one upgraded connection recorded', async () => {
    const app = await switchingApp();
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(UPGRADE);
    await until('the 101 and the first bytes', () => c.text() === `${SWITCH}hello`, 5_000, 10);
    // The app got the upgrade headers (and none of the other hop-by-hop ones).
    expect(app.heads[0]).toMatch(/\r\nconnection: upgrade\r\nupgrade: websocket\r\n/);
    expect(app.heads[0]).not.toMatch(/http2-settings/i);
    expect(p.upgraded()).toBe(1);
    // The upgraded connection left the pool: it holds no slot and will never carry a request again.
    expect(p.pool.stats).toEqual({ open: 0, idle: 0, queued: 0 });
    c.socket.write('ping');
    await until('the echo', () => c.text().endsWith('helloPING'), 3_000, 10);
    // The client finishes sending; the app can still answer, then finishes too.
    c.socket.end();
    const up = app.sockets[0]!;
    await until('the app sees the half-close', () => up.readableEnded, 3_000, 10);
    up.write('after your end');
    await until('bytes after the half-close', () => c.text().endsWith('after your end'), 3_000, 10);
    up.end();
    await until('recorded', () => p.records.length === 1, 3_000, 10);
    // What went through the upgraded connection, both ways; neither the upgrade request nor the 101 head is counted.
    expect(p.records[0]).toMatchObject({ status: 101, target: '/chat', responseFlags: 'downstream_closed', bytesIn: 'ping'.length, bytesOut: 'helloPINGafter your end'.length });
    expect(c.text()).toBe(`${SWITCH}helloPINGafter your end`);
    expect(p.upgraded()).toBe(0);
    await until('the client connection closes', () => c.ended(), 3_000, 10);
  });

  test('a plan that does not allow upgrades answers 501 after deciding; a refusing plan answers its own status; the app sees neither', async () => {
    const app = await switchingApp();
    const p = await http1Harness(app.port, cleanups, { plan: () => ({ forward: true, add: '' }) });
    const r = await rawHttp({ port: p.port }, [UPGRADE], { until: oneResponse, capMs: 5_000 });
    expect(r.text).toMatch(/^HTTP\/1\.1 501 /);
    expect(r.text).toContain('x-tessera-error: upgrade_unsupported');
    expect(p.records[0]).toMatchObject({ status: 501, error: 'upgrade_unsupported' });
    expect(p.rejected).toEqual(['upgrade_unsupported']);

    const q = await http1Harness(app.port, cleanups, { plan: () => ({ forward: false, status: 403, code: 'authz_denied' }) });
    const denied = await rawHttp({ port: q.port }, [UPGRADE], { until: oneResponse, capMs: 5_000 });
    expect(denied.text).toMatch(/^HTTP\/1\.1 403 /);
    expect(q.records[0]).toMatchObject({ status: 403, error: 'authz_denied' });
    expect(app.sockets).toHaveLength(0);
    expect(q.upgraded()).toBe(0);
  });

  test('an app that answers 200 to an upgrade: relayed, and the connection goes on as HTTP', async () => {
    const app = await rawApp(cleanups, (s) => s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain')));
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(UPGRADE);
    await until('the 200', () => c.text().endsWith('plain'), 5_000, 10);
    c.socket.write('GET /next HTTP/1.1\r\nHost: app\r\n\r\n');
    await until('a second answer on the same connection', () => (c.text().match(/HTTP\/1\.1 200/g) ?? []).length === 2, 5_000, 10);
    expect(p.records.map((r) => r.status)).toEqual([200, 200]);
    expect(p.upgraded()).toBe(0);
    expect(app.sockets).toHaveLength(1); // and the upstream connection was pooled and reused
  });

  test('an h2c upgrade is not passed on: the app gets a plain HTTP/1.1 request, and a 101 to it is a 502', async () => {
    const app = await switchingApp();
    const p = await http1Harness(app.port, cleanups);
    const r = await rawHttp({ port: p.port }, ['GET /x HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n'], { until: oneResponse, capMs: 5_000 });
    expect(app.heads[0]).not.toMatch(/upgrade/i);
    expect(r.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(p.upgraded()).toBe(0);
  });

  test('only protocols on the allow-list switch: every other offer reaches an app that takes any as a plain request (audit 57a F3)', async () => {
    // An app that accepts whatever it is offered, and answers a request without an offer with a plain 200 (its
    // connection then pooled for the next request: each head comes whole in one read on loopback).
    const heads: string[] = [];
    const app = await rawApp(cleanups, (s) => {
      s.on('data', (d: Buffer) => {
        const text = d.toString('latin1');
        heads.push(text);
        const offered = /\r\nupgrade: *([^\r]*)/i.exec(text)?.[1];
        s.write(offered !== undefined ? `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${offered}\r\n\r\n` : 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain');
      });
      s.on('end', () => s.end()); // a tunnel whose client left ends on both sides
    });
    const ask = async (port: number, upgrade: string) => {
      const r = await rawHttp({ port }, [`GET /x HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: ${upgrade}\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`], { until: (t) => t.includes('\r\n\r\n'), capMs: 5_000 });
      return { status: Number(r.text.slice(9, 12)), app: heads.at(-1)! };
    };
    const p = await http1Harness(app.port, cleanups);
    for (const upgrade of ['h2c-14', 'h2c-17', 'SPDY/3.1', 'TLS/1.2', 'h2c;q=1', '"h2c"', 'websocket, TLS/1.0', 'tcp']) {
      const r = await ask(p.port, upgrade);
      expect([upgrade, r.status], r.app).toEqual([upgrade, 200]);
      expect(r.app, upgrade).not.toMatch(/\r\n(upgrade|connection|http2-settings):/i);
    }
    expect(await ask(p.port, 'WebSocket')).toMatchObject({ status: 101, app: expect.stringMatching(/\r\nconnection: upgrade\r\nupgrade: WebSocket\r\n/) });
    // An operator's list: its protocols switch, HTTP-carrying ones still do not.
    const q = await http1Harness(app.port, cleanups, { upgrades: new Set(['websocket', 'tcp']) });
    expect((await ask(q.port, 'TCP')).status).toBe(101);
    expect((await ask(q.port, 'SPDY/3.1')).status).toBe(200);
  });

  test('a 101 the request did not ask for is a bad upstream response (502), nothing is tunnelled', async () => {
    const app = await rawApp(cleanups, (s) => s.on('data', () => s.write(`${SWITCH}raw bytes`)));
    const p = await http1Harness(app.port, cleanups);
    const r = await rawHttp({ port: p.port }, ['GET / HTTP/1.1\r\nHost: app\r\n\r\n'], { until: oneResponse, capMs: 5_000 });
    expect(r.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(r.text).not.toContain('raw bytes');
    expect(p.upgraded()).toBe(0);
  });

  test('a peer that stops reading: back-pressure holds the other side (bounded memory), then the idle tunnel is cut', async () => {
    let flooded = 0;
    let blocked = false;
    const app = await rawApp(cleanups, (s) => {
      s.once('data', () => {
        s.write(SWITCH);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = () => {
          while (!s.destroyed && flooded < 256 * 1024 * 1024) {
            flooded += chunk.length;
            if (!s.write(chunk)) {
              blocked = true;
              s.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
    });
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.pause(); // the client never reads
    c.socket.write(UPGRADE);
    await until('the app is held back', () => blocked, 5_000, 10);
    // Wait until no more bytes move: every buffer on the way is full.
    let last = -1;
    await until('the flood settles', () => {
      const settled = flooded === last;
      last = flooded;
      return settled;
    }, 10_000, 200);
    // Socket buffers only (the kernel's, both hops, and Node's high-water marks): nowhere near the 256 MiB offered.
    expect(flooded).toBeLessThan(32 * 1024 * 1024);
    p.advance(HARNESS_LIMITS.streamIdleTimeoutMs + 1);
    await until('the tunnel is cut', () => p.records.length === 1, 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 101, responseFlags: 'stream_idle_timeout' });
    expect(p.rejected).toEqual(['stream_idle_timeout']);
    expect(p.upgraded()).toBe(0);
    await until('the app connection is closed', () => app.sockets[0]!.destroyed, 3_000, 10);
  });

  test('a tunnel that moves bytes is not cut by streamIdleTimeout; the upstream finishing first is recorded as such', async () => {
    const app = await switchingApp();
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(UPGRADE);
    await until('the 101', () => c.text().endsWith('hello'), 5_000, 10);
    for (let i = 0; i < 4; i++) {
      p.advance(HARNESS_LIMITS.streamIdleTimeoutMs - 500);
      c.socket.write(`m${i}`);
      await until(`echo ${i}`, () => c.text().endsWith(`M${i}`), 3_000, 5);
    }
    expect(p.records).toHaveLength(0);
    const appGot = collect(app.sockets[0]!);
    app.sockets[0]!.end();
    await until('the client sees the end', () => c.ended(), 3_000, 10);
    c.socket.write('last words'); // the other direction is still open
    await until('the app still reads', () => appGot() === 'last words', 3_000, 10);
    c.socket.end();
    await until('recorded', () => p.records.length === 1, 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 101, responseFlags: 'upstream_closed' });
  });
});

