// The control plane's Discovery service end to end: the real `tessera control-plane` process, two SVIDs fetched
// from it, Register and Watch over grpc-js with mTLS — snapshot then incremental updates, a registration for
// another ID refused and audited, removal after the call ends plus the grace, the static file source, and a
// restart that serves the previous registrations (unconfirmed) until the remembered window after it is ready; a request bounded as a
// whole, its refusals audited as one row, and each SPIFFE ID's requests rate-limited.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DiscoveryUpdateMsg, EndpointMsg, RegisterResponseMsg } from '../../common/contract/discovery-v1.js';
import { rememberedForMs } from '../../common/routing/reconnect-window.js';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, errorCode, joinTokenSvid, setBan, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { makeTempDir } from '../helpers/run.js';
import { collectStream } from '../helpers/stream-collector.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const DB = `spiffe://${TD}/ns/data/sa/db`;
const FLOOD = `spiffe://${TD}/ns/default/sa/flood`;
const GRACE_MS = 4_000;
let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;
let api: ClientSvid;
let web: ClientSvid;
let staticFile: string;

/** An SVID over SignSvid in-process: `token create` and `svid fetch` are not what this file is about. */
const fetchSvid = (id: string) => joinTokenSvid(cp, bundlePem, id);

/** A Watch stream as `svid` (none: no client certificate), collected; close() cancels it. */
function watch(svid: ClientSvid | undefined, req: { services?: string[]; all?: boolean }) {
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  const stream = collectStream(c.discovery.Watch!({ services: req.services ?? [], all: req.all ?? false }) as grpc.ClientReadableStream<DiscoveryUpdateMsg>);
  return {
    ...stream,
    next: (pred: (m: DiscoveryUpdateMsg) => boolean, from = 0, timeoutMs = 15_000) => stream.next(pred, { from, timeoutMs }),
    close() {
      stream.cancel();
      c.close();
    },
  };
}

/** A Register call: `send(regs)` writes a complete set and waits for its answer. */
function register(svid: ClientSvid) {
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  const call = c.discovery.Register!() as grpc.ClientDuplexStream<unknown, RegisterResponseMsg>;
  const answers: RegisterResponseMsg[] = [];
  let error: grpc.ServiceError | undefined;
  call.on('data', (m: RegisterResponseMsg) => answers.push(m));
  call.on('error', (e: grpc.ServiceError) => {
    error = e;
  });
  return {
    async send(registrations: { service: string; endpoint: Partial<EndpointMsg> }[]): Promise<RegisterResponseMsg> {
      const n = answers.length;
      call.write({ registrations });
      await until('a RegisterResponse', () => answers.length > n || error !== undefined, 10_000, 20);
      if (answers.length <= n) throw error;
      return answers[n]!;
    },
    /** The status the call ended with, once it did. */
    error: () => error,
    /** Half-closes (the proxy withdraws). */
    end() {
      call.end();
      setTimeout(() => c.close(), 500);
    },
  };
}

const ep = (address: string, spiffe_id: string, extra: Partial<EndpointMsg> = {}): Partial<EndpointMsg> => ({ address, spiffe_id, protocol: 'http', ready: true, ...extra });
const addressesOf = (m: DiscoveryUpdateMsg, service: string) => m.services.find((s) => s.service === service)?.endpoints.map((e) => `${e.address} ${e.source}`);
const metrics = async () => (await fetch(`http://${cp.admin}/metrics`)).text();
const auditLines = async () => (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const counter = (text: string, series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? 0);

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  staticFile = join(dir, 'endpoints.yaml');
  await writeFile(staticFile, `services:\n  db:\n    - { address: 127.0.0.9:5432, spiffeId: ${DB}, protocol: tcp }\n`);
  // The test services api registers are listed as its own; api.default and web follow the naming rule; api may
  // also serve db, whose static endpoint is DB's.
  const identities = `{ api.other: [${API}], api.many: [${API}], api.gone: [${API}], api.kept: [${API}], web.many: [${WEB}], db: [${DB}, ${API}] }`;
  const config = await writeControlPlaneConfig(dir, `discovery: { staticFile: ./endpoints.yaml, registrationGrace: ${GRACE_MS / 1000}s, serviceIdentities: ${identities} }`);
  cp = await startControlPlaneProcess(dir, config);
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  api = await fetchSvid(API);
  web = await fetchSvid(WEB);
}, 60_000);

afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

describe('Discovery/Watch and Register', () => {
  test('a full snapshot at once, then only the changed service, each complete; an unspecified host becomes the caller\'s', async () => {
    const w = watch(web, { services: ['api.default', 'db'] });
    const reg = register(api);
    try {
      const first = await w.next(() => true);
      expect(first.full).toBe(true);
      expect(addressesOf(first, 'db')).toEqual(['127.0.0.9:5432 static']);
      expect(addressesOf(first, 'api.default')).toEqual([]);

      const answer = await reg.send([{ service: 'api.default', endpoint: ep('0.0.0.0:15006', API, { source: 'kubernetes' }) }]);
      expect(answer.refused).toEqual([]);
      expect(answer.accepted.map((a) => [a.service, a.endpoint?.address, a.endpoint?.source])).toEqual([['api.default', '127.0.0.1:15006', 'self']]);
      const update = await w.next((m) => !m.full, 1);
      expect(Number(update.version)).toBeGreaterThan(Number(first.version));
      expect(update.services.map((s) => s.service)).toEqual(['api.default']);
      expect(addressesOf(update, 'api.default')).toEqual(['127.0.0.1:15006 self']);

      // A second endpoint: the update carries the service's complete list.
      await reg.send([{ service: 'api.default', endpoint: ep('0.0.0.0:15006', API) }, { service: 'api.default', endpoint: ep('127.0.0.4:15006', API) }]);
      const two = await w.next((m) => addressesOf(m, 'api.default')?.length === 2, 2);
      expect(addressesOf(two, 'api.default')).toEqual(['127.0.0.1:15006 self', '127.0.0.4:15006 self']);

      // The admin view shows the same.
      const view = (await (await fetch(`http://${cp.admin}/endpoints`)).json()) as Record<string, { address: string; confirmed: boolean }[]>;
      expect(view['api.default']!.map((e) => [e.address, e.confirmed])).toEqual([['127.0.0.1:15006', true], ['127.0.0.4:15006', true]]);
      expect(await metrics()).toMatch(/tessera_cp_registry_endpoints\{service="api.default",source="self"\} 2/);
    } finally {
      reg.end();
      w.close();
    }
  });

  test('a registration naming another SPIFFE ID is refused, counted and audited; the valid ones in the request are kept', async () => {
    const reg = register(api);
    try {
      const answer = await reg.send([
        { service: 'web', endpoint: ep('127.0.0.5:15006', WEB) },
        { service: 'api.other', endpoint: ep('127.0.0.5:15007', API) },
        { service: 'Bad_Name', endpoint: ep('127.0.0.5:15008', API) },
        { service: 'api.other', endpoint: ep('127.0.0.5:notaport', API) },
      ]);
      expect(answer.accepted.map((a) => a.service)).toEqual(['api.other']);
      expect(answer.refused.map((r) => r.code)).toEqual(['TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', 'TESSERA_ERR_DISCOVERY_BAD_SERVICE_NAME', 'TESSERA_ERR_DISCOVERY_BAD_ENDPOINT']);
      const audit = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const line = audit.find((a) => a['event'] === 'registration.refused');
      expect(line).toMatchObject({ code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', spiffeId: API, claimed: WEB, service: 'web', address: '127.0.0.5:15006' });
      const text = await metrics();
      expect(text).toMatch(/tessera_cp_registrations_refused_total\{code="TESSERA_ERR_DISCOVERY_NOT_YOUR_ID"\} 1/);
      expect(text).toMatch(/tessera_cp_registrations_refused_total\{code="TESSERA_ERR_DISCOVERY_BAD_ENDPOINT"\} 1/);
    } finally {
      reg.end();
    }
  });

  test('a service the caller may not serve is refused, counted and audited; a source keeps its address from a self-registration', async () => {
    const reg = register(api);
    const asWeb = register(web);
    try {
      // api.default is api's by its name; web.default (web's) and web.many (listed for web) are not api's.
      const answer = await reg.send([
        { service: 'api.default', endpoint: ep('127.0.0.5:15016', API) },
        { service: 'web.default', endpoint: ep('127.0.0.5:15017', API) },
        { service: 'web.many', endpoint: ep('127.0.0.5:15018', API) },
        // Listed as api's too, but the static file gives this address to db's own ID: the file wins.
        { service: 'db', endpoint: ep('127.0.0.9:5432', API) },
      ]);
      expect(answer.accepted.map((a) => a.service)).toEqual(['api.default', 'db']);
      expect(answer.refused.map((r) => [r.service, r.code])).toEqual([
        ['web.default', 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED'],
        ['web.many', 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED'],
      ]);
      // web cannot join api's service either.
      expect((await asWeb.send([{ service: 'api.default', endpoint: ep('127.0.0.6:15016', WEB) }])).refused.map((r) => r.code)).toEqual(['TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED']);
      const audit = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const lines = audit.filter((a) => a['event'] === 'registration.refused' && a['code'] === 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED');
      // One row per request: its first refusal, the counts by code, and the first few entries.
      expect(lines.map((l) => [l['spiffeId'], l['service'], l['counts']])).toEqual([
        [API, 'web.default', { TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED: 2 }],
        [WEB, 'api.default', { TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED: 1 }],
      ]);
      expect(lines[0]!['examples']).toEqual(['TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED web.default 127.0.0.5:15017', 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED web.many 127.0.0.5:15018']);
      expect(await metrics()).toMatch(/tessera_cp_registrations_refused_total\{code="TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED"\} 3/);
      const endpoints = async () => (await (await fetch(`http://${cp.admin}/endpoints`)).json()) as Record<string, { address: string; spiffeId: string; source: string }[]>;
      await until('api.default registered', async () => (await endpoints())['api.default']?.length === 1, 10_000, 50);
      expect((await endpoints())['db']?.map((e) => `${e.address} ${e.spiffeId} ${e.source}`)).toEqual([`127.0.0.9:5432 ${DB} static`]);
      expect((await endpoints())['web.default']).toBeUndefined();
    } finally {
      reg.end();
      asWeb.end();
    }
  });

  test('more registrations than one call may hold: the first 64 are accepted, the rest refused TOO_MANY', async () => {
    const reg = register(api);
    try {
      const many = Array.from({ length: 66 }, (_, i) => ({ service: 'api.many', endpoint: ep(`127.0.1.${i + 1}:15006`, API) }));
      const answer = await reg.send(many);
      expect(answer.accepted).toHaveLength(64);
      expect(answer.refused.map((r) => [r.address, r.code])).toEqual([
        ['127.0.1.65:15006', 'TESSERA_ERR_DISCOVERY_TOO_MANY'],
        ['127.0.1.66:15006', 'TESSERA_ERR_DISCOVERY_TOO_MANY'],
      ]);
      // A later, smaller set replaces the whole set.
      const fewer = await reg.send(many.slice(0, 2));
      expect(fewer.accepted).toHaveLength(2);
      await until('api.many has 2 endpoints', async () => ((await (await fetch(`http://${cp.admin}/endpoints`)).json()) as Record<string, unknown[]>)['api.many']?.length === 2, 10_000, 50);
    } finally {
      reg.end();
    }
  });

  test('one SPIFFE ID holds at most 1024 registrations across its calls', async () => {
    const calls = Array.from({ length: 17 }, () => register(web));
    try {
      const answers = await Promise.all(calls.map((c, k) => c.send(Array.from({ length: 64 }, (_, i) => ({ service: 'web.many', endpoint: ep(`127.0.${10 + k}.${i + 1}:15006`, WEB) })))));
      expect(answers.reduce((n, a) => n + a.accepted.length, 0)).toBe(1024);
      expect(answers.flatMap((a) => a.refused.map((r) => r.code))).toEqual(Array(64).fill('TESSERA_ERR_DISCOVERY_TOO_MANY'));
    } finally {
      for (const c of calls) c.end();
    }
  });

  test("refused entries count toward a request's bound; a request's refusals are one audit row; a SPIFFE ID's requests are rate-limited", async () => {
    const flood = await fetchSvid(FLOOD);
    const notMine = (n: number) => Array.from({ length: n }, (_, i) => ({ service: 'a', endpoint: ep(`127.0.2.${(i % 250) + 1}:${1000 + i}`, WEB) }));
    const series = 'tessera_cp_registrations_refused_total{code="TESSERA_ERR_DISCOVERY_NOT_YOUR_ID"}';
    const before = counter(await metrics(), series);
    const reg = register(flood);
    try {
      // 256 refused entries (the audit's repro sent ~6,000 a request): all answered and counted, one audit row.
      const answer = await reg.send(notMine(256));
      expect(answer.accepted).toEqual([]);
      expect(answer.refused).toHaveLength(256);
      expect(new Set(answer.refused.map((r) => r.code))).toEqual(new Set(['TESSERA_ERR_DISCOVERY_NOT_YOUR_ID']));
      expect(counter(await metrics(), series) - before).toBe(256);
      const rows = (await auditLines()).filter((a) => a['event'] === 'registration.refused' && a['spiffeId'] === FLOOD);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', claimed: WEB, service: 'a', address: '127.0.2.1:1000', counts: { TESSERA_ERR_DISCOVERY_NOT_YOUR_ID: 256 } });
      expect(rows[0]!['examples']).toHaveLength(3);
      // One entry more and the request is refused whole: the call ends with TOO_MANY, nothing more audited per entry.
      await expect(reg.send(notMine(257))).rejects.toBeDefined();
      expect(errorCode(reg.error()!)).toBe('TESSERA_ERR_DISCOVERY_TOO_MANY');
      expect(reg.error()!.code).toBe(8); // RESOURCE_EXHAUSTED
      expect((await auditLines()).filter((a) => a['event'] === 'registration.refused' && a['spiffeId'] === FLOOD)).toHaveLength(1);
    } finally {
      reg.end();
    }
    // The ID's requests, over all its calls, are rate-limited (120 at once, 4 a second after): a bounded loop of
    // empty sets ends with the call refused.
    const again = register(flood);
    try {
      let answered = 0;
      for (let i = 0; i < 1000 && again.error() === undefined; i++) {
        try {
          await again.send([]);
          answered++;
        } catch {
          break;
        }
      }
      expect(errorCode(again.error()!)).toBe('TESSERA_ERR_DISCOVERY_RATE_LIMITED');
      expect(answered).toBeGreaterThan(100);
      expect(answered).toBeLessThan(1000);
      expect(await metrics()).toMatch(/tessera_cp_registrations_refused_total\{code="TESSERA_ERR_DISCOVERY_RATE_LIMITED"\} 1/);
    } finally {
      again.end();
    }
  });

  test('when the Register call ends, its endpoints stay for the grace, then an update removes them', async () => {
    const w = watch(web, { services: ['api.gone'] });
    const reg = register(api);
    try {
      await w.next(() => true);
      await reg.send([{ service: 'api.gone', endpoint: ep('127.0.0.6:15006', API) }]);
      await w.next((m) => addressesOf(m, 'api.gone')?.length === 1);
      const ended = Date.now();
      reg.end();
      const from = w.seen.length;
      const gone = await w.next((m) => addressesOf(m, 'api.gone')?.length === 0, from, GRACE_MS + 15_000);
      expect(Date.now() - ended).toBeGreaterThanOrEqual(GRACE_MS - 500);
      expect(gone.full).toBe(false);
    } finally {
      w.close();
    }
  });

  test('the static file is watched: an edit is an update, a broken edit keeps the last view and is counted', async () => {
    const w = watch(web, { all: true });
    try {
      const first = await w.next(() => true);
      expect(addressesOf(first, 'db')).toEqual(['127.0.0.9:5432 static']);
      await writeFile(staticFile, `services:\n  db:\n    - { address: 127.0.0.9:5432, spiffeId: ${DB}, protocol: tcp }\n    - { address: 127.0.0.10:5432, spiffeId: ${DB}, protocol: tcp }\n`);
      await w.next((m) => addressesOf(m, 'db')?.length === 2, 1);
      await writeFile(staticFile, 'services:\n  db:\n    - { address: 127.0.0.11:5432 }\n');
      await until('the broken file counted', async () => /tessera_cp_discovery_source_errors_total\{source="static"\} [1-9]/.test(await metrics()), 10_000, 50);
      // writeFile truncates before it writes: a read between the two sees an empty file (reported as such, at 1:1),
      // and the watcher reads again once the write lands, so the line of the real fault follows.
      await until('the broken line reported', () => (cp.stderr() + cp.stdout()).includes(`${staticFile}:3`), 10_000, 50);
      expect(addressesOf(w.seen.at(-1)!, 'db')).toHaveLength(2);
    } finally {
      w.close();
    }
  });

  test('bad requests: a bad service name, too many services, no client SVID', async () => {
    const bad = watch(web, { services: ['api', 'NOT OK'] });
    const many = watch(web, { services: Array.from({ length: 1001 }, (_, i) => `s${i}`) });
    const anon = watch(undefined, { services: ['api'] });
    try {
      await until('all three refused', () => Boolean(bad.ended() && many.ended() && anon.ended()), 10_000, 25);
      expect(errorCode(bad.ended()!.error!)).toBe('TESSERA_ERR_DISCOVERY_BAD_SERVICE_NAME');
      expect(errorCode(many.ended()!.error!)).toBe('TESSERA_ERR_DISCOVERY_TOO_MANY');
      expect(anon.ended()!.error!.code).toBe(16);
    } finally {
      for (const w of [bad, many, anon]) w.close();
    }
  });

  test("a banned caller's Register is refused with the ban's code, audited and counted (audit 36a: counted nowhere)", async () => {
    const id = `spiffe://${TD}/ns/default/sa/banned-registrant`;
    const svid = await fetchSvid(id);
    await setBan(cp.dataDir, 'ban', 'spiffe_id', id);
    const series = 'tessera_cp_registrations_refused_total{code="TESSERA_ERR_REVOCATION_ID_BANNED"}';
    const before = counter(await metrics(), series);
    const reg = register(svid);
    try {
      await expect(reg.send([{ service: 'api', endpoint: ep('127.0.0.5:15090', id) }])).rejects.toBeDefined();
      expect(errorCode(reg.error()!)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
      await until('the refusal counted', async () => counter(await metrics(), series) === before + 1, 10_000, 50);
      expect((await auditLines()).some((a) => a['event'] === 'discovery.register_refused' && a['code'] === 'TESSERA_ERR_REVOCATION_ID_BANNED')).toBe(true);
    } finally {
      reg.end();
    }
  });

  test('a restarted control plane serves the previous registrations, unconfirmed, for the remembered window after it is ready (the proxies’ reconnect cap plus a margin, longer than this grace)', async () => {
    const reg = register(api);
    await reg.send([{ service: 'api.kept', endpoint: ep('127.0.0.7:15006', API) }, { service: 'api.kept', endpoint: ep('127.0.0.8:15006', API) }]);
    expect(await cp.stop()).toBe(0);
    reg.end();
    cp = await startControlPlaneProcess(dir, cp.configFile);
    const readyAt = Date.now();
    const w = watch(web, { services: ['api.kept'] });
    try {
      const first = await w.next(() => true);
      expect(addressesOf(first, 'api.kept')).toEqual(['127.0.0.7:15006 self', '127.0.0.8:15006 self']);
      const view = (await (await fetch(`http://${cp.admin}/endpoints`)).json()) as Record<string, { confirmed: boolean }[]>;
      expect(view['api.kept']!.map((e) => e.confirmed)).toEqual([false, false]);
      // The proxy is back with one of them: that one stays, the other goes at the end of the window, not the grace.
      const back = register(api);
      await back.send([{ service: 'api.kept', endpoint: ep('127.0.0.7:15006', API) }]);
      const after = await w.next((m) => addressesOf(m, 'api.kept')?.length === 1, 1, rememberedForMs(GRACE_MS) + 15_000);
      expect(Date.now() - readyAt).toBeGreaterThanOrEqual(rememberedForMs(GRACE_MS) - 1_000);
      expect(addressesOf(after, 'api.kept')).toEqual(['127.0.0.7:15006 self']);
      back.end();
    } finally {
      w.close();
    }
  }, 90_000);
});
