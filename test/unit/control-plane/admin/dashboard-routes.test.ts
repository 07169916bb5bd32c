// The dashboard's routes on a real admin listener (node:http on loopback): the page and its modules come from this
// process with a 'self' Content-Security-Policy and no inline script; the fleet JSON answers; the event stream sends
// the view at once, again only when it changed (checked on the poll and on a change announced by the store), and
// heartbeat comments in between; viewers are capped; a foreign Host header and non-GET methods are refused; the
// page's time axis (a browser module) is checked by importing its text.
import { writeFile } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, test } from 'vitest';
import { AdminHttp } from '../../../../control-plane/src/admin/admin-http.js';
import { TIME_AXIS_JS } from '../../../../control-plane/src/admin/dashboard/assets/time-axis-js.js';
import { DASHBOARD_CSP, dashboardRoutes, type DashboardRoutes } from '../../../../control-plane/src/admin/dashboard/dashboard-routes.js';
import { isLocalHost, isLoopbackPeer } from '../../../../shared-io/local-request.js';
import type { FleetView } from '../../../../control-plane/src/admin/dashboard/fleet-view.js';
import type { Ban, ChangeTopic } from '../../../../control-plane/src/store/store-contract.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { run, withTempDir } from '../../../helpers/run.js';
import { until } from '../../../helpers/until.js';

const TD = 'example.org';

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function get(address: string, path: string, opts: { method?: string; host?: string } = {}): Promise<Answer> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An open event stream: everything received so far, split into events and comments. */
function stream(address: string): Promise<{ status: number; text: () => string; events: () => FleetView[]; comments: () => number; ended: () => boolean; close(): void }> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/events', headers: { accept: 'text/event-stream' } }, (res) => {
      let text = '';
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        ended = true;
      });
      const blocks = () => text.split('\n\n').filter((b) => b !== '');
      resolve({
        status: res.statusCode!,
        text: () => text,
        events: () => blocks().flatMap((b) => (b.includes('event: fleet') ? [JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as FleetView] : [])),
        comments: () => blocks().filter((b) => b.startsWith(':')).length,
        ended: () => ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.map((s) => s()));
  stops = [];
});

async function start(opts: { maxClients?: number } = {}) {
  const time = new FakeTime();
  const bans: Ban[] = [];
  const subscribers = new Map<ChangeTopic, () => void>();
  let builds = 0;
  const signerNotAfterMs = time.nowMs() + 3_600_000;
  const routes: DashboardRoutes = dashboardRoutes({
    trustDomain: TD,
    clock: time,
    timers: time,
    ca: () => ({ authorities: [], signer: { authorityId: 'aaaa1111', notAfterMs: signerNotAfterMs, intermediate: { serialNumber: '0A' } } }),
    policies: () => [],
    inventory: {
      livePage: async () => {
        builds++;
        return [];
      },
    },
    reports: { list: async () => [] },
    grants: { active: async () => [] },
    revocations: { live: async () => [...bans] },
    audit: { recent: async () => [] },
    changes: {
      subscribe: (topic, fn) => {
        subscribers.set(topic, fn);
        return () => subscribers.delete(topic);
      },
    },
    pollMs: 2000,
    // Builds here are spaced by the poll alone: fake time advanced while one is in flight would count as its cost
    // (the spacing by cost is dashboard-fleet-feed.test.ts's).
    costFactor: 0,
    heartbeatMs: 15_000,
    ...(opts.maxClients ? { maxClients: opts.maxClients } : {}),
  });
  const http = new AdminHttp({ listen: '127.0.0.1:0', registry: new Registry(), notReadyReason: () => undefined, certs: () => ({}), config: () => ({}), routes: routes.handle });
  await http.start();
  stops.push(async () => {
    routes.close();
    await http.stop();
  });
  const ban = (value: string) => bans.push({ kind: 'spiffe_id', value, reason: 'test', createdBy: 'ops', createdAtMs: time.nowMs(), notAfterMs: null });
  return { time, http, routes, ban, subscribers, builds: () => builds };
}

describe('dashboard routes', () => {
  test('the page and its modules: same origin only, no inline script or style, security headers on every answer', async () => {
    const { http } = await start();
    const page = await get(http.address, '/dashboard');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("default-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    // Every script has a src; no inline handlers or style attributes (the CSP would refuse them).
    expect(page.body.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="/dashboard/app.js">']);
    expect(page.body).not.toMatch(/\son[a-z]+=|\sstyle=|<style/);
    // Tables carry captions and column headers.
    expect(page.body.match(/<table /g)!.length).toBe(page.body.match(/<caption>/g)!.length);
    for (const [path, type] of [
      ['/dashboard/app.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/tables.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/time-axis.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/style.css', 'text/css; charset=utf-8'],
      ['/dashboard/icon.svg', 'image/svg+xml'],
    ] as const) {
      const a = await get(http.address, path);
      expect([a.status, a.headers['content-type'], a.headers['content-security-policy']], path).toEqual([200, type, DASHBOARD_CSP]);
    }
    // Nothing is fetched from elsewhere: every URL in the shipped files is this listener's or a namespace.
    for (const path of ['/dashboard', '/dashboard/app.js', '/dashboard/tables.js', '/dashboard/time-axis.js', '/dashboard/style.css']) {
      const urls = (await get(http.address, path)).body.match(/https?:\/\/[^\s'"<>)]+/g) ?? [];
      expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg'), path).toEqual([]);
    }
    expect((await get(http.address, '/dashboard/nope.js')).status).toBe(404);
    expect((await get(http.address, '/healthz')).body).toBe('ok\n');
  });

  test('read-only, and loopback only: other methods get 405, a Host header that names a DNS name gets 403', async () => {
    const { http } = await start();
    expect((await get(http.address, '/api/fleet', { method: 'POST' })).status).toBe(405);
    expect((await get(http.address, '/dashboard', { method: 'DELETE' })).status).toBe(405);
    const rebound = await get(http.address, '/api/fleet', { host: 'attacker.example:8444' });
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain(TD);
    expect((await get(http.address, '/api/fleet', { host: `localhost:${http.address.split(':')[1]}` })).status).toBe(200);
    expect([isLoopbackPeer('127.0.0.1'), isLoopbackPeer('::ffff:127.0.0.9'), isLoopbackPeer('::1'), isLoopbackPeer('10.0.0.1'), isLoopbackPeer('::ffff:10.0.0.1'), isLoopbackPeer(undefined)]).toEqual([true, true, true, false, false, false]);
    expect([isLocalHost('127.0.0.1:8444'), isLocalHost('[::1]:8444'), isLocalHost('localhost'), isLocalHost('10.1.2.3'), isLocalHost('cp.internal:8444'), isLocalHost('127.0.0.1.nip.io'), isLocalHost(undefined)]).toEqual([true, true, true, true, false, false, false]);
  });

  test('GET /api/fleet answers the view as JSON', async () => {
    const { http, ban } = await start();
    ban(`spiffe://${TD}/ns/default/sa/web`);
    const a = await get(http.address, '/api/fleet');
    expect(a.status).toBe(200);
    expect(a.headers['cache-control']).toBe('no-store');
    const view = JSON.parse(a.body) as FleetView;
    expect(view).toMatchObject({ version: 1, trustDomain: TD, bans: [{ value: `spiffe://${TD}/ns/default/sa/web` }], unavailable: [] });
  });

  test('the event stream: the view at once, again only on a change (poll or announcement), heartbeats between', async () => {
    const { http, time, ban, subscribers, builds } = await start();
    const s = await stream(http.address);
    expect(s.status).toBe(200);
    await until('the first view', () => s.events().length === 1);
    expect(s.text().startsWith('retry: 3000\n\n')).toBe(true);
    expect(s.events()[0]!.bans).toEqual([]);

    // Polls with nothing changed send nothing (but do rebuild).
    const before = builds();
    time.advance(2000);
    time.advance(2000);
    await until('two polls', () => builds() >= before + 2);
    time.advance(11_000);
    await until('a heartbeat', () => s.comments() === 1);
    expect(s.events().length).toBe(1);

    // A change is sent on the next poll.
    ban(`spiffe://${TD}/ns/default/sa/api`);
    time.advance(2000);
    await until('the view with the ban', () => s.events().length === 2);
    expect(s.events()[1]!.bans.map((b) => b.value)).toEqual([`spiffe://${TD}/ns/default/sa/api`]);

    // A change the store announces is sent without waiting for the poll.
    expect([...subscribers.keys()].sort()).toEqual(['ca', 'grants', 'revocations']);
    ban(`spiffe://${TD}/ns/default/sa/db`);
    subscribers.get('revocations')!();
    await until('the view with the second ban', () => s.events().length === 3);
    expect(time.pending).toBe(2);

    // The last viewer gone, nothing keeps polling.
    s.close();
    await until('timers stopped', () => time.pending === 0);
  });

  test('viewers are capped: the next one is told to poll instead; stopping the listener ends the streams', async () => {
    const { http, routes } = await start({ maxClients: 1 });
    const first = await stream(http.address);
    await until('the first view', () => first.events().length === 1);
    const second = await get(http.address, '/api/events');
    expect(second.status).toBe(503);
    expect(second.headers['retry-after']).toBe('5');
    expect(first.ended()).toBe(false);
    routes.close();
    await until('the stream ended', () => first.ended());
  });
});

describe('the browser modules', () => {
  test('each shipped script parses as an ES module (node --check)', async () => {
    const { http } = await start();
    await withTempDir(async (dir) => {
      for (const name of ['app.js', 'tables.js', 'time-axis.js']) {
        const file = join(dir, name.replace('.js', '.mjs'));
        await writeFile(file, (await get(http.address, `/dashboard/${name}`)).body);
        const r = await run(process.execPath, ['--check', file]);
        expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      }
    });
  });


  test('log scale from now to the latest end, ticks that fit, relative and clock texts', async () => {
    const m = (await import(`data:text/javascript,${encodeURIComponent(TIME_AXIS_JS)}`)) as {
      makeScale: (now: number, end: number, x0: number, x1: number) => (t: number) => number;
      ticks: (now: number, end: number) => { ms: number; label: string }[];
      relative: (ms: number, now: number) => string;
      clockText: (ms: number, now: number) => string;
    };
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const year = 365 * 24 * 3_600_000;
    const x = m.makeScale(now, now + year, 100, 900);
    expect(x(now - 5000)).toBe(100);
    expect(x(now)).toBe(100);
    expect(x(now + year)).toBeCloseTo(900, 6);
    expect(x(now + 2 * year)).toBeCloseTo(900, 6);
    // Minutes get room next to a year: a 2-minute SVID is visibly wide, and order is kept.
    expect(x(now + 120_000) - 100).toBeGreaterThan(50);
    expect(x(now + 60_000)).toBeLessThan(x(now + 120_000));
    expect(m.ticks(now, now + 2 * 3_600_000).map((t) => t.label)).toEqual(['1 min', '10 min', '1 h']);
    expect(m.ticks(now, now + 60_000).map((t) => t.label)).toEqual(['1 min', '10 min']);
    expect([m.relative(now + 54_000, now), m.relative(now - 3 * 60_000, now), m.relative(now + 2 * 3_600_000, now), m.relative(now + year, now), m.relative(now + 200, now)]).toEqual(['in 54 s', '3 min ago', 'in 2 h', 'in 365 d', 'now']);
    expect([m.clockText(now + 1000, now), m.clockText(now + 2 * 24 * 3_600_000, now)]).toEqual(['12:00:01Z', '2026-01-03 12:00Z']);
  });
});
