// An upgraded connection through Http1Session ends once, whichever way it ends, over a plain TCP client and over a
// TLS client (as at the edge): one record, and the upgraded hook's running sum back at 0, never below (audit 57c F1).
// The ways: the app's FIN or reset, the client's FIN or reset, the total timeout, the stream idle timeout, the drain
// deadline (the listener's cut()) and the connection destroyed under the session (a ban). Real loopback sockets, real
// TLS; only the session's clock is stepped. tunnel-gauges-*.test.ts show the same on real proxies, except at the
// proxy that drains: it exits before its gauges can be read, so its cut is shown here.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type Cleanup, HARNESS_LIMITS, type Harness, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const UPGRADE = 'GET /chat HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
const TOTAL_MS = 60_000;

let site: { key: string; cert: string; ca: string };
beforeAll(async () => {
  const ca = await TestCa.create({ trustDomain: 'site.test' });
  const leaf = await ca.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
  site = { key: leaf.keyPem, cert: leaf.chainPem, ca: ca.bundlePem() };
});

/** An app that switches on the first request, echoes after, and finishes its side once its client has. */
function switchingApp() {
  return rawApp(cleanups, (s) => {
    let upgraded = false;
    s.on('end', () => s.end());
    s.on('data', (d: Buffer) => {
      if (!upgraded) s.write(`${SWITCH}hello`);
      else s.write(d);
      upgraded = true;
    });
  });
}

interface Client {
  readonly socket: net.Socket;
  /** Its TCP connection (where a reset is sent). */
  readonly raw: net.Socket;
  closed(): boolean;
}

/** A client that upgrades and has the app's first bytes; over TLS with `ca`. */
async function upgradedClient(port: number, ca: string | undefined): Promise<Client> {
  const raw = net.connect({ host: '127.0.0.1', port });
  raw.on('error', () => undefined);
  const socket = ca ? tls.connect({ socket: raw, servername: 'localhost', ca }) : raw;
  socket.on('error', () => undefined);
  let closed = false;
  let text = '';
  socket.on('close', () => {
    closed = true;
  });
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  cleanups.push(() => raw.destroy());
  await new Promise((r) => socket.once(ca ? 'secureConnect' : 'connect', r));
  socket.write(UPGRADE);
  await until('the 101 and the first bytes', () => text === `${SWITCH}hello`, 5_000, 10);
  return { socket, raw, closed: () => closed };
}

type Ending = (h: Harness, c: Client, app: net.Socket, down: net.Socket) => void;

const ENDINGS: readonly (readonly [string, Ending, string])[] = [
  ["the app's FIN", (_h, _c, app) => app.end(), 'upstream_closed'],
  ["the app's reset", (_h, _c, app) => app.resetAndDestroy(), 'upstream_closed'],
  ["the client's FIN", (_h, c) => c.socket.end(), 'downstream_closed'],
  ["the client's reset", (_h, c) => c.raw.resetAndDestroy(), 'downstream_closed'],
  ['the total timeout', (h) => h.advance(TOTAL_MS + 1), 'total_timeout'],
  ['the stream idle timeout', (h) => h.advance(HARNESS_LIMITS.streamIdleTimeoutMs + 1), 'stream_idle_timeout'],
  ["the drain deadline (the listener's cut())", (h) => h.sessions[0]!.cut(), 'drain_timeout'],
  ['the connection destroyed under the session (a ban)', (_h, _c, _app, down) => down.destroy(), 'downstream_closed'],
];

describe.each([
  ['a plain TCP client', false],
  ['a TLS client (the edge)', true],
])('over %s, an upgraded connection ends once', (_title, overTls) => {
  test.each(ENDINGS)('%s', async (_what, end, flag) => {
    const app = await switchingApp();
    let down: net.Socket | undefined;
    const totalTimeoutMs = flag === 'total_timeout' ? TOTAL_MS : undefined;
    const p = await http1Harness(app.port, cleanups, { ...(overTls ? { tls: site } : {}), ...(totalTimeoutMs ? { totalTimeoutMs } : {}), onDownstream: (s) => (down = s) });
    const c = await upgradedClient(p.port, overTls ? site.ca : undefined);
    expect(p.upgraded()).toBe(1);
    end(p, c, app.sockets[0]!, down!);
    await until('both legs closed', () => c.closed() && app.sockets[0]!.destroyed, 5_000, 10);
    await until('recorded', () => p.records.length === 1, 5_000, 10);
    expect(p.records).toEqual([expect.objectContaining({ status: 101, responseFlags: flag })]);
    // Before 2026-12-07, over TLS, every ending that resets the client's leg (the app's reset, the total timeout, the
    // drain deadline) ended the tunnel twice: -1 here, and the edge's tessera_upgraded_connections one lower for good.
    expect(p.upgraded()).toBe(0);
  });
});
