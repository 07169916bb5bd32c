// The proxy's fleet reporter on fake timers, its listener checked by real TLS handshakes: a report goes out at
// start, after every new SVID (not after a bundle-only update) and on each interval; it carries the serial the
// listener really serves (a listener still on the old SVID is reported as such, and checked again until it
// matches) and the denial rows; a failed send is logged at debug and the next interval sends again; a report
// stays within the bounds the control plane checks.
import { type Server, createServer } from 'node:tls';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import type { ProxyReportMsg } from '../../../../common/contract/config-v1.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { validateReport } from '../../../../control-plane/src/api/report-service.js';
import { probeServedLeaf } from '../../../../proxy/src/admin/served-check.js';
import { DenialTally } from '../../../../proxy/src/authz/denial-tally.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { FleetReporter, processInstance } from '../../../../proxy/src/telemetry/fleet-reporter.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const INTERVAL = 30_000;

/** A stand-in for an inbound listener as far as the check sees it: a TLS server presenting an SVID. */
async function tlsListener(svid: MintedSvid): Promise<{ server: Server; port: number; serve(s: MintedSvid): void }> {
  const server = createServer({ cert: svid.chainPem, key: svid.keyPem });
  server.on('secureConnection', (s) => s.end());
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, serve: (s) => server.setSecureContext({ cert: s.chainPem, key: s.keyPem }) };
}

async function setup(o: { fail?: () => boolean; notStarted?: boolean } = {}) {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const ca = await TestCa.create({ nowMs: time.nowMs() });
  const bundles = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
  const identity = new IdentityStore(time);
  const first = await ca.mintSvid(ID);
  identity.update({ chain: first.chain, key: first.key, bundles, source: 'control-plane' });
  const listener = await tlsListener(first);
  const sent: ProxyReportMsg[] = [];
  const results: string[] = [];
  const denials = new DenialTally();
  const debug: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => debug.push(line) });
  const reporter = new FleetReporter({
    send: async (m) => {
      if (o.fail?.()) throw new Error('control plane unreachable');
      sent.push(m);
    },
    identity,
    listeners: () => [{ name: 'app', host: '127.0.0.1', port: listener.port }, ...(o.notStarted ? [{ name: 'not-started', host: '127.0.0.1', port: undefined }] : [])],
    probe: probeServedLeaf,
    denials,
    instance: 'host-a/42',
    nowMs: () => time.nowMs(),
    timers: time,
    intervalMs: INTERVAL,
    log,
    onResult: (r) => results.push(r),
  });
  const install = (s: MintedSvid) => identity.update({ chain: s.chain, key: s.key, bundles, source: 'control-plane' });
  return { time, ca, identity, first, listener, sent, results, denials, debug, reporter, install, bundles };
}

const servedSerial = (m: ProxyReportMsg | undefined) => m?.served.find((s) => s.listener === 'app')?.serial;

describe('FleetReporter', () => {
  const servers: Server[] = [];
  const reporters: FleetReporter[] = [];
  afterEach(() => {
    for (const r of reporters.splice(0)) r.stop();
    for (const s of servers.splice(0)) s.close();
  });

  test('reports at start what the listener serves, again on every interval, and after a rotation the new serial', async () => {
    const t = await setup();
    servers.push(t.listener.server);
    reporters.push(t.reporter);
    const startedAt = t.time.nowMs();
    t.reporter.start();
    await until('the start report', () => t.sent.length === 1);
    const first = t.sent[0]!;
    expect(first.instance).toBe('host-a/42');
    expect(first.checked_at_unix_ms).toBe(String(startedAt));
    expect(first.served).toEqual([{ listener: 'app', serial: t.first.leaf.serialNumber.toLowerCase(), not_after_unix_ms: String(t.first.leaf.validToDate.getTime()) }]);

    t.time.advance(INTERVAL);
    await until('the interval report', () => t.sent.length === 2);
    // Nothing changed: the check is not repeated, its time stays.
    expect(t.sent[1]!.checked_at_unix_ms).toBe(String(startedAt));

    // Rotation: the listener serves the new SVID, the identity installs it; a report follows at once.
    const second = await t.ca.mintSvid(ID);
    t.listener.serve(second);
    t.time.advance(1_000);
    t.install(second);
    await until('the rotation report', () => t.sent.length === 3);
    expect(servedSerial(t.sent[2])).toBe(second.leaf.serialNumber.toLowerCase());
    expect(t.sent[2]!.checked_at_unix_ms).toBe(String(t.time.nowMs()));

    // A bundle-only update keeps the leaf: no extra report.
    t.identity.update({ chain: second.chain, key: second.key, bundles: t.bundles, source: 'control-plane' });
    await new Promise((r) => setTimeout(r, 200));
    expect(t.sent).toHaveLength(3);
    expect(t.results).toEqual(['sent', 'sent', 'sent']);
  });

  test('a listener still serving the old SVID is reported as such and checked again each interval until it matches', async () => {
    const t = await setup();
    servers.push(t.listener.server);
    reporters.push(t.reporter);
    t.reporter.start();
    await until('the start report', () => t.sent.length === 1);
    const second = await t.ca.mintSvid(ID);
    t.install(second); // the listener keeps serving the first SVID
    await until('the rotation report', () => t.sent.length === 2);
    expect(servedSerial(t.sent[1])).toBe(t.first.leaf.serialNumber.toLowerCase());

    t.listener.serve(second);
    t.time.advance(INTERVAL);
    await until('the interval report', () => t.sent.length === 3);
    expect(servedSerial(t.sent[2])).toBe(second.leaf.serialNumber.toLowerCase());
    expect(t.sent[2]!.checked_at_unix_ms).toBe(String(t.time.nowMs()));
  });

  test('a listener not bound yet is reported with an empty serial and checked again on the next interval', async () => {
    const t = await setup({ notStarted: true });
    servers.push(t.listener.server);
    reporters.push(t.reporter);
    t.reporter.start();
    await until('the start report', () => t.sent.length === 1);
    expect(t.sent[0]!.served[1]).toEqual({ listener: 'not-started', serial: '', not_after_unix_ms: '0' });
    t.time.advance(INTERVAL);
    await until('the interval report', () => t.sent.length === 2);
    expect(t.sent[1]!.checked_at_unix_ms).toBe(String(t.time.nowMs()));
  });

  test('a failed send is logged at debug and counted; the next interval sends again with the denials so far', async () => {
    let down = true;
    const t = await setup({ fail: () => down });
    servers.push(t.listener.server);
    reporters.push(t.reporter);
    t.reporter.start();
    await until('the failed start report', () => t.results.length === 1);
    expect(t.results).toEqual(['failed']);
    expect(t.debug.some((l) => l.includes('"level":20') && l.includes('fleet report not sent'))).toBe(true);

    t.denials.record('api-allow-web', 'deny', SpiffeId.parse('spiffe://example.org/ns/batch/sa/job'), t.time.nowMs());
    down = false;
    t.time.advance(INTERVAL);
    await until('the next report', () => t.sent.length === 1);
    expect(t.sent[0]!.denials).toEqual([{ policy: 'api-allow-web', outcome: 'deny', count: '1', last_at_unix_ms: String(t.time.nowMs() - INTERVAL), last_caller: 'spiffe://example.org/ns/batch/sa/job' }]);
    expect(t.results).toEqual(['failed', 'sent']);
  });

  test('stop() ends the schedule', async () => {
    const t = await setup();
    servers.push(t.listener.server);
    t.reporter.start();
    await until('the start report', () => t.sent.length === 1);
    t.reporter.stop();
    t.time.advance(5 * INTERVAL);
    t.install(await t.ca.mintSvid(ID));
    await new Promise((r) => setTimeout(r, 200));
    expect(t.sent).toHaveLength(1);
    expect(t.time.pending).toBe(0);
  });

  test('the largest report it builds passes the control plane checks and stays under the request cap', async () => {
    const t = await setup();
    servers.push(t.listener.server);
    // Every row with a caller ID near its 2048-byte limit: the least recent rows are left out to fit.
    const longCaller = SpiffeId.parse(`spiffe://example.org/${'a'.repeat(2000)}`);
    for (let i = 0; i < 400; i++) t.denials.record(`policy-${i}`, i % 2 ? 'audit' : 'deny', longCaller, i);
    const msg = t.reporter.build();
    expect(msg.denials.length).toBeGreaterThan(10);
    expect(msg.denials.length).toBeLessThan(254);
    // Rows 0..253 exist on their own, later ones are folded ("*", last at 398 and 399): the most recent are kept.
    expect(msg.denials.filter((d) => d.policy === '*')).toHaveLength(2);
    expect(Math.min(...msg.denials.map((d) => Number(d.last_at_unix_ms)))).toBe(256 - msg.denials.length);
    expect(JSON.stringify(msg).length).toBeLessThan(60 * 1024);
    expect(() => validateReport(msg, ID, 0, 'cp')).not.toThrow();
  });

  test('the instance is host/pid, printable and bounded', () => {
    expect(processInstance('web-7d9f', 4121)).toBe('web-7d9f/4121');
    expect(processInstance('bad host/é', 7)).toBe('bad_host__/7');
    expect(processInstance('', 7)).toBe('unknown/7');
    expect(processInstance('h'.repeat(400), 123456)).toHaveLength(256);
  });
});
