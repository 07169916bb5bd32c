// The fleet dashboard's view builder on fixed inputs: renewal chains fold into one row per running workload, each
// proxy's served serial is compared with the newest SVID of its chain (a proxy that did not switch is a mismatch, a
// renewal after its check is not), denials are summed per policy and outcome, the rotation step follows from the
// authority states, a failing source empties only its panels (with a code, never a raw message), the timeline holds
// everything that expires, and "changed" ignores the moment the view was built; one SPIFFE ID's many instances
// cannot push other proxies out of the cut proxy panel, and summed denials stop at Number.MAX_SAFE_INTEGER.
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import type { BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import type { AuthorityRecord } from '../../../../control-plane/src/ca/authority.js';
import { type CaView, rotationStep } from '../../../../control-plane/src/admin/dashboard/ca-panel.js';
import { viewKey } from '../../../../control-plane/src/admin/dashboard/fleet-feed.js';
import { buildFleetView, DEFAULT_FLEET_LIMITS, eventRow, type FleetSources } from '../../../../control-plane/src/admin/dashboard/fleet-view.js';
import { SERVE_GRACE_MS } from '../../../../control-plane/src/admin/dashboard/proxy-panel.js';
import type { Ban, IssuedSvidRow, ProxyReport } from '../../../../control-plane/src/store/store-contract.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { livePages } from '../../../helpers/live-pages.js';

const TD = 'example.org';
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const API = `spiffe://${TD}/ns/default/sa/api`;
const CP = `spiffe://${TD}/tessera/control-plane`;
const MIN = 60_000;
/** The policies this control plane distributes in these tests. */
const KNOWN_POLICIES = ['api-allow-web', 'api-audit'];

function svid(serial: string, spiffeId: string, issuedAtMs: number, attestedAs: string, kind = 'renew', authorityId = 'aaaa1111'): IssuedSvidRow {
  return { serial, spiffeId, authorityId, intermediateSerial: '0a', notBeforeMs: issuedAtMs - 10_000, notAfterMs: issuedAtMs + 10 * MIN, issuedAtMs, attestedAs, kind, caller: '127.0.0.1:5000' };
}

function authority(id: string, state: AuthorityRecord['state'], createdAtMs: number, inter: string): { record: AuthorityRecord } {
  return {
    record: { id, state, createdAtMs, rootCertFile: `${id}-root.crt`, rootKeyFile: `${id}-root.key`, rootNotAfterMs: createdAtMs + 365 * 24 * 60 * MIN, intermediates: [{ serial: inter, certFile: 'i.crt', keyFile: 'i.key', notAfterMs: createdAtMs + 7 * 24 * 60 * MIN }] },
  };
}

function report(spiffeId: string, instance: string, serial: string, checkedAtMs: number, denials: ProxyReport['denials'] = []): ProxyReport {
  return { spiffeId, instance, served: [{ listener: 'app', serial, notAfterMs: checkedAtMs + 5 * MIN }, { listener: 'grpc', serial, notAfterMs: checkedAtMs + 5 * MIN }], checkedAtMs, receivedAtMs: checkedAtMs + 10, replica: 'cp-1', denials };
}

interface Inputs {
  svids: IssuedSvidRow[];
  reports: ProxyReport[];
  grants: BreakGlassGrant[];
  bans: Ban[];
  audit: Record<string, unknown>[];
  ca: CaView;
}

function sources(time: FakeTime, i: Inputs, fail: Partial<Record<'inventory' | 'reports' | 'audit', Error>> = {}): FleetSources {
  const maybeFail = <T>(key: keyof typeof fail, v: T) => (fail[key] ? Promise.reject(fail[key]) : Promise.resolve(v));
  return {
    trustDomain: TD,
    clock: time,
    ca: () => i.ca,
    inventory: { livePage: (now, after, limit) => (fail.inventory ? Promise.reject(fail.inventory) : livePages(() => i.svids)(now, after, limit)) },
    reports: { list: (since) => maybeFail('reports', i.reports.filter((r) => r.receivedAtMs >= since)) },
    grants: { active: async (now) => i.grants.filter((g) => g.expiresAtMs > now) },
    revocations: { live: async () => i.bans },
    policies: () => KNOWN_POLICIES.map((name) => ({ name })),
    audit: { recent: (prefix, limit) => maybeFail('audit', i.audit.filter((e) => String(e['event']).startsWith(prefix)).slice(0, limit)) },
  };
}

/** A small running mesh: web renewed twice, two api replicas (one renewed), the control plane's own SVIDs. */
function mesh(time: FakeTime): Inputs {
  const t0 = time.nowMs() - 6 * MIN;
  return {
    svids: [
      svid('0a01', WEB, t0, 'join_token:1a2b3c4d', 'attest'),
      svid('0a02', WEB, t0 + 3 * MIN, 'x509svid:0a01'),
      svid('0a03', WEB, t0 + 6 * MIN - 30_000, 'x509svid:0A02'),
      svid('0b01', API, t0 + MIN, 'join_token:5e6f7a8b', 'attest'),
      svid('0b02', API, t0 + 4 * MIN, 'x509svid:0b01'),
      svid('0c01', API, t0 + 2 * MIN, 'join_token:9c0d1e2f', 'attest'),
      svid('0d01', CP, t0, 'self', 'self'),
      svid('0d02', CP, t0 + 5 * MIN, 'self', 'self'),
    ],
    reports: [],
    grants: [],
    bans: [],
    audit: [],
    ca: { authorities: [authority('aaaa1111', 'active', t0 - 60 * MIN, '1f')], signer: { authorityId: 'aaaa1111', notAfterMs: t0 + 7 * 24 * 60 * MIN, intermediate: { serialNumber: '1F' } } },
  };
}

describe('fleet view: workloads', () => {
  test('renewal chains fold into one row per running workload, replicas stay apart, the control plane shows its newest', async () => {
    const time = new FakeTime();
    const view = await buildFleetView(sources(time, mesh(time)));
    expect(view.workloads.map((w) => [w.spiffeId, w.serial, w.superseded])).toEqual([
      [API, '0b02', 1],
      [API, '0c01', 0],
      [WEB, '0a03', 2],
      [CP, '0d02', 1],
    ]);
    expect(view.workloads.find((w) => w.serial === '0b02')!.attestedAs).toBe('x509svid:0b01');
    expect(view.unavailable).toEqual([]);
  });
});

describe('fleet view: proxies', () => {
  test('served serial against the newest of its chain: current, superseded (mismatch), renewed after the check, unknown', async () => {
    const time = new FakeTime();
    const now = time.nowMs();
    const i = mesh(time);
    const api1RenewedAt = i.svids.find((s) => s.serial === '0b02')!.issuedAtMs;
    i.reports = [
      report(WEB, 'web-host/11', '0a03', now - 1000),
      // Checked well after its renewal came, still serving the old SVID: it did not switch.
      report(API, 'api-host/21', '0B01', api1RenewedAt + SERVE_GRACE_MS + 1000),
      // Checked just before its SVID was renewed: nothing wrong yet.
      report(API, 'api-host/22', '0b01', api1RenewedAt - 1000),
      report(API, 'api-host/23', 'ffee', now - 1000),
      // Its own handshake to its listener failed: it reports an empty serial.
      report(WEB, 'web-host/12', '', now - 1000),
    ];
    const view = await buildFleetView(sources(time, i));
    const byInstance = new Map(view.proxies.map((p) => [p.instance, p]));
    expect(byInstance.get('web-host/11')!.served).toEqual([{ listeners: ['app', 'grpc'], serial: '0a03', notAfterMs: now - 1000 + 5 * MIN, status: 'current', latestSerial: null, latestIssuedAtMs: null }]);
    expect(byInstance.get('web-host/11')!.mismatch).toBe(false);
    const stale = byInstance.get('api-host/21')!;
    expect(stale.served[0]).toMatchObject({ serial: '0b01', status: 'superseded', latestSerial: '0b02', latestIssuedAtMs: api1RenewedAt });
    expect(stale.mismatch).toBe(true);
    expect(byInstance.get('api-host/22')!.served[0]!.status).toBe('renewed-since-check');
    expect(byInstance.get('api-host/22')!.mismatch).toBe(false);
    expect(byInstance.get('api-host/23')!.served[0]!.status).toBe('unknown');
    expect(byInstance.get('api-host/23')!.mismatch).toBe(true);
    expect(byInstance.get('web-host/12')!.served[0]!.status).toBe('check-failed');
    expect(byInstance.get('web-host/12')!.mismatch).toBe(true);
    // Mismatches first.
    expect(view.proxies.map((p) => p.mismatch)).toEqual([true, true, true, false, false]);
    // Bounded: the rows kept are the mismatches.
    const few = await buildFleetView(sources(time, i), { ...DEFAULT_FLEET_LIMITS, maxProxyRows: 2 });
    expect(few.proxies.map((p) => p.mismatch)).toEqual([true, true]);
    expect(few.truncated).toEqual({ proxies: 3 });
    // The newest SVID a proxy does not serve yet is marked on the timeline.
    expect(view.timeline.find((t) => t.kind === 'svid' && t.label.endsWith('0b02'))!.note).toBe('not served yet');
  });

  test('a proxy silent for longer than the threshold is marked; an expired served SVID is a mismatch', async () => {
    const time = new FakeTime();
    const now = time.nowMs();
    const i = mesh(time);
    const old = report(WEB, 'web-host/11', '0a03', now - DEFAULT_FLEET_LIMITS.silentAfterMs - 5000);
    i.reports = [{ ...old, served: [{ listener: 'app', serial: '0a03', notAfterMs: now - 1 }] }];
    const [p] = (await buildFleetView(sources(time, i))).proxies;
    expect(p!.silent).toBe(true);
    expect(p!.served[0]!.status).toBe('expired');
    expect(p!.mismatch).toBe(true);
  });

  test('denials are summed per policy and outcome over every proxy, the latest caller kept', async () => {
    const time = new FakeTime();
    const now = time.nowMs();
    const i = mesh(time);
    i.reports = [
      report(API, 'api-host/21', '0b02', now - 2000, [
        { policy: 'api-allow-web', outcome: 'deny', count: 3, lastAtMs: now - 5000, lastCaller: `spiffe://${TD}/ns/default/sa/batch` },
        { policy: 'api-audit', outcome: 'audit', count: 7, lastAtMs: now - 9000, lastCaller: WEB },
      ]),
      report(API, 'api-host/22', '0c01', now - 2000, [{ policy: 'api-allow-web', outcome: 'deny', count: 2, lastAtMs: now - 3000, lastCaller: 'unauthenticated' }]),
    ];
    const view = await buildFleetView(sources(time, i));
    expect(view.denials).toEqual([
      { policy: 'api-allow-web', outcome: 'deny', count: 5, saturated: false, lastAtMs: now - 3000, lastCaller: 'unauthenticated', reportedBy: [`${API} api-host/21`, `${API} api-host/22`], unknownFrom: null },
      { policy: 'api-audit', outcome: 'audit', count: 7, saturated: false, lastAtMs: now - 9000, lastCaller: WEB, reportedBy: [`${API} api-host/21`], unknownFrom: null },
    ]);
  });

  test('one SPIFFE ID reporting from hundreds of instances (with mismatches) does not push the other proxies out of the cut panel', async () => {
    const time = new FakeTime();
    const now = time.nowMs();
    const i = mesh(time);
    // Real proxies serving their current SVIDs (no mismatch), reporting before the flood.
    i.reports = [report(WEB, 'web-host/1', '0a03', now - 5000), report(API, 'api-host/21', '0b02', now - 5000), report(API, 'api-host/22', '0c01', now - 5000)];
    const legit = i.reports.map((r) => `${r.spiffeId} ${r.instance}`);
    const FLOOD = `spiffe://${TD}/ns/default/sa/flood`;
    // Newer than every real report, each serving an unknown serial (a mismatch, sorted first before).
    for (let n = 0; n < 600; n++) i.reports.push(report(FLOOD, `fake-${n}`, 'ffff', now - 1000));
    const view = await buildFleetView(sources(time, i));
    expect(view.proxies).toHaveLength(DEFAULT_FLEET_LIMITS.maxProxyRows);
    const shown = new Set(view.proxies.map((p) => `${p.spiffeId} ${p.instance}`));
    for (const l of legit) expect(shown.has(l), l).toBe(true);
    expect(view.truncated.proxies).toBe(600 + legit.length - DEFAULT_FLEET_LIMITS.maxProxyRows);
  });

  test('denial counts summed past 2^53 stop at Number.MAX_SAFE_INTEGER, marked saturated (the audit saw 6178938688752319000)', async () => {
    const time = new FakeTime();
    const now = time.nowMs();
    const i = mesh(time);
    const big = { policy: 'api-allow-web', outcome: 'deny' as const, count: Number.MAX_SAFE_INTEGER - 1, lastAtMs: now - 5000, lastCaller: WEB };
    i.reports = Array.from({ length: 3 }, (_, n) => report(API, `api-host/${n}`, '0b02', now - 2000, [big]));
    i.reports.push(report(WEB, 'web-host/1', '0a03', now - 2000, [{ ...big, policy: 'api-audit', count: 4 }]));
    const view = await buildFleetView(sources(time, i));
    expect(view.denials.map((d) => [d.policy, d.count, d.saturated])).toEqual([
      ['api-allow-web', Number.MAX_SAFE_INTEGER, true],
      ['api-audit', 4, false],
    ]);
    expect(view.denials.every((d) => Number.isSafeInteger(d.count))).toBe(true);
  });
});

describe('fleet view: CA', () => {
  test('the rotation step follows the states: idle → propagating → draining → removable', async () => {
    const time = new FakeTime();
    const i = mesh(time);
    const idle = (await buildFleetView(sources(time, i))).ca!;
    expect(idle.rotation).toMatchObject({ phase: 'idle', current: null, command: 'tessera ca prepare' });
    // Six workload SVIDs: the control plane's own two keep no authority in the bundle (self-signer.ts).
    expect(idle.authorities[0]).toMatchObject({ id: 'aaaa1111', state: 'active', liveSvids: 6, intermediates: [{ serial: '1f', signing: true }] });

    const t = time.nowMs();
    i.ca = { ...i.ca, authorities: [...i.ca.authorities, authority('bbbb2222', 'prepared', t, '2e')] };
    const propagating = (await buildFleetView(sources(time, i))).ca!;
    expect(propagating.rotation).toMatchObject({ phase: 'propagating', current: 'propagate', command: 'tessera ca activate' });
    expect(propagating.authorities.map((a) => a.state)).toEqual(['active', 'prepared']);

    i.ca = { authorities: [authority('aaaa1111', 'retired', t - 60 * MIN, '1f'), authority('bbbb2222', 'active', t, '2e')], signer: { authorityId: 'bbbb2222', notAfterMs: t + MIN, intermediate: { serialNumber: '2E' } }, servedAuthority: 'aaaa1111' };
    const draining = (await buildFleetView(sources(time, i))).ca!;
    expect(draining.rotation).toMatchObject({ phase: 'draining', current: 'retire', command: null });
    expect(draining.rotation.summary).toContain('aaaa1111 (6 live SVIDs)');
    // The control plane's own SVID is still of the retired authority: a proxy that missed the prepare reconnects.
    expect(draining.servedAuthority).toBe('aaaa1111');
    expect(draining.rotation.summary).toContain("The control plane's own SVID stays signed by aaaa1111 until then");
    expect(draining.authorities.map((a) => [a.id, a.state, a.liveSvids])).toEqual([
      ['bbbb2222', 'active', 0],
      ['aaaa1111', 'retired', 6],
    ]);

    // Once the retired authority's SVIDs have expired, removing it is the step left.
    time.advance(11 * MIN);
    expect((await buildFleetView(sources(time, i))).ca!.rotation).toMatchObject({ phase: 'draining', command: 'tessera ca retire' });
  });

  test('a prepared authority outranks a retired one still draining', () => {
    const row = (id: string, state: 'active' | 'prepared' | 'retired') => ({ id, state, createdAtMs: 0, activatedAtMs: null, retiredAtMs: null, rootNotAfterMs: 1, intermediates: [], liveSvids: 3, lastSvidNotAfterMs: 5 });
    const step = rotationStep([row('a', 'active'), row('p', 'prepared'), row('r', 'retired')]);
    expect(step).toMatchObject({ phase: 'propagating', current: 'propagate' });
    expect(step.summary).toContain('Retired r still waits');
  });
});

describe('fleet view: sources that fail, events, grants, timeline', () => {
  test('a failing source empties its panels only, with the coded reason; an uncoded error says nothing of itself', async () => {
    const time = new FakeTime();
    const i = mesh(time);
    const view = await buildFleetView(sources(time, i, { inventory: new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', 'the database is down'), reports: new Error('password=hunter2 rejected') }));
    expect(view.workloads).toEqual([]);
    expect(view.ca!.authorities[0]!.liveSvids).toBeNull();
    expect(view.unavailable).toEqual([
      { panel: 'workloads', reason: 'TESSERA_ERR_STORE_UNAVAILABLE: the database is down' },
      { panel: 'proxies', reason: 'the source could not be read (see the control plane log)' },
      { panel: 'denials', reason: 'the source could not be read (see the control plane log)' },
    ]);
    expect(JSON.stringify(view)).not.toContain('hunter2');
    expect(view.ca!.rotation.phase).toBe('idle');
  });

  test('recent events: the listed kinds only, newest first, about whom, the rest shortened into detail', async () => {
    const time = new FakeTime();
    const i = mesh(time);
    const at = (s: number) => new Date(time.nowMs() - s * 1000).toISOString();
    i.audit = [
      { ts: at(1), event: 'svid.issued', result: 'issued', spiffeId: WEB },
      { ts: at(5), event: 'svid.refused', result: 'refused', code: 'TESSERA_ERR_TOKEN_USED', spiffeId: API, caller: '127.0.0.1:4000' },
      { ts: at(3), event: 'ca.prepared', result: 'ok', caller: 'control-plane', authority: 'bbbb2222' },
      { ts: at(2), event: 'break_glass.opened', result: 'ok', grant: 'bg-1', to: API, from: [WEB], reason: 'x'.repeat(400) },
      { ts: 'not a time', event: 'ca.removed' },
    ];
    const view = await buildFleetView(sources(time, i));
    expect(view.events.map((e) => [e.event, e.subject])).toEqual([
      ['break_glass.opened', 'bg-1'],
      ['ca.prepared', 'bbbb2222'],
      ['svid.refused', API],
    ]);
    expect(view.events[2]).toMatchObject({ result: 'refused', code: 'TESSERA_ERR_TOKEN_USED', caller: '127.0.0.1:4000', detail: '' });
    expect(view.events[0]!.detail.length).toBeLessThanOrEqual(240);
    expect(view.events[0]!.detail.startsWith(`to: ${API}; from: ${WEB}; reason: xxx`)).toBe(true);
    expect(eventRow({ ts: at(0), event: 'revocation.banned', kind: 'serial', value: '0a01', reason: 'lost laptop' })).toMatchObject({ subject: '0a01', detail: 'kind: serial; reason: lost laptop' });
  });

  test('the timeline holds roots, intermediates, grants and SVIDs (soonest first), bounded; expired grants are gone', async () => {
    const time = new FakeTime();
    const i = mesh(time);
    const now = time.nowMs();
    i.grants = [
      { id: 'bg-live', to: API, from: [WEB], expiresAtMs: now + 15 * MIN, reason: 'incident 42', createdBy: 'ops', createdAtMs: now - MIN },
      { id: 'bg-gone', to: API, from: [WEB], expiresAtMs: now - 1, reason: 'old', createdAtMs: now - 20 * MIN },
    ];
    const view = await buildFleetView(sources(time, i), { ...DEFAULT_FLEET_LIMITS, timelineSvids: 2 });
    expect(view.grants.map((g) => g.id)).toEqual(['bg-live']);
    expect(view.timeline.map((t) => [t.kind, t.label, t.note])).toEqual([
      ['root', 'aaaa1111', 'active'],
      ['intermediate', '1f of aaaa1111', 'signing'],
      ['grant', 'bg-live to /ns/default/sa/api', null],
      ['svid', '/ns/default/sa/api 0c01', null],
      ['svid', '/ns/default/sa/api 0b02', null],
    ]);
    expect(view.truncated).toEqual({ timeline: 2 });
  });

  test('"changed" ignores when the view was built, and sees any change of content', async () => {
    const time = new FakeTime();
    const i = mesh(time);
    const a = await buildFleetView(sources(time, i));
    time.advance(1000);
    const b = await buildFleetView(sources(time, i));
    expect(b.generatedAtMs).toBe(a.generatedAtMs + 1000);
    expect(viewKey(b)).toBe(viewKey(a));
    i.bans = [{ kind: 'spiffe_id', value: WEB, reason: 'compromised', createdBy: 'ops', createdAtMs: time.nowMs(), notAfterMs: null }];
    expect(viewKey(await buildFleetView(sources(time, i)))).not.toBe(viewKey(a));
  });
});
