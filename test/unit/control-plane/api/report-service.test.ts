// Config/Report: the proxy's fleet report, checked field by field (bounds, duplicates, names, serials, callers,
// times), then over the control plane's real TLS gRPC front with the proxy's own client and the real SQLite store:
// the stored report carries the SPIFFE ID of the caller's SVID (never anything from the message), this replica's
// clock and name; callers without a valid SVID, banned callers, malformed, oversized and too frequent reports are
// refused with their codes, counted, and store nothing. The proxy's client names a failed report
// TESSERA_ERR_REPORT_FAILED and a failed mint TESSERA_ERR_JWT_SVID_UNAVAILABLE, not an SVID request's failure.
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DenialCountMsg, ProxyReportMsg, ServedSvidMsg } from '../../../../common/contract/config-v1.js';
import { TesseraError } from '../../../../common/errors.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { GrpcServer } from '../../../../control-plane/src/api/grpc-server.js';
import { guardedService } from '../../../../control-plane/src/api/guarded-service.js';
import { reportHandlers, reportMetrics, validateReport } from '../../../../control-plane/src/api/report-service.js';
import { SvidAttestor } from '../../../../control-plane/src/attestation/svid-attestor.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { ControlPlaneClient } from '../../../../proxy/src/identity/control-plane-client.js';
import { loadTesseraServices } from '../../../../shared-io/proto-loader.js';
import { CONTROL_PLANE_ID, controlPlaneClients, errorCode } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { issuedSvid } from '../../../helpers/issued-svid.js';
import { sumSeries } from '../../../helpers/prom-metrics.js';
import { makeTempDir } from '../../../helpers/run.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { systemClock } from '../../../../common/clock.js';
import { realTimers } from '../../../../shared-io/timers.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const T0 = Math.floor(Date.now() / 1000) * 1000;

const served = (n: number, over: Partial<ServedSvidMsg> = {}): ServedSvidMsg[] =>
  Array.from({ length: n }, (_, i) => ({ listener: `in-${i}`, serial: '0a1b2c', not_after_unix_ms: String(T0 + 3_600_000), ...over }));
const denial = (over: Partial<DenialCountMsg> = {}): DenialCountMsg => ({ policy: 'api-allow-web', outcome: 'deny', count: '3', last_at_unix_ms: String(T0), last_caller: WEB, ...over });
const report = (over: Partial<ProxyReportMsg> = {}): ProxyReportMsg => ({ instance: 'web-7d9f/4121', checked_at_unix_ms: String(T0), served: served(1), denials: [denial()], ...over });

/** The field a refusal names, or "accepted". */
function verdict(msg: ProxyReportMsg): string {
  try {
    validateReport(msg, WEB, T0, 'replica-a');
    return 'accepted';
  } catch (e) {
    expect((e as TesseraError).code).toBe('TESSERA_ERR_REPORT_INVALID');
    return String((e as TesseraError).details['field']);
  }
}

describe('validateReport', () => {
  test('a good report becomes the stored form, stamped with the proven ID, the receive time and the replica', () => {
    const msg = report({ denials: [denial(), denial({ policy: '', outcome: 'audit', last_caller: 'unauthenticated', count: '0' }), denial({ policy: '*', count: 7 })] });
    expect(validateReport(msg, WEB, T0 + 5, 'replica-a')).toEqual({
      spiffeId: WEB,
      instance: 'web-7d9f/4121',
      served: [{ listener: 'in-0', serial: '0a1b2c', notAfterMs: T0 + 3_600_000 }],
      checkedAtMs: T0,
      receivedAtMs: T0 + 5,
      replica: 'replica-a',
      denials: [
        { policy: 'api-allow-web', outcome: 'deny', count: 3, lastAtMs: T0, lastCaller: WEB },
        { policy: '', outcome: 'audit', count: 0, lastAtMs: T0, lastCaller: 'unauthenticated' },
        { policy: '*', outcome: 'deny', count: 7, lastAtMs: T0, lastCaller: WEB },
      ],
    });
    // A listener whose check failed is reported with an empty serial.
    expect(verdict(report({ served: served(1, { serial: '', not_after_unix_ms: '0' }) }))).toBe('accepted');
    expect(verdict(report({ served: [], denials: [] }))).toBe('accepted');
  });

  test('the bounds: 256 listeners and 256 rows pass, one more is refused whole', () => {
    expect(verdict(report({ served: served(256) }))).toBe('accepted');
    expect(verdict(report({ served: served(257) }))).toBe('served');
    const rows = (n: number) => Array.from({ length: n }, (_, i) => denial({ policy: `p-${i}` }));
    expect(verdict(report({ denials: rows(256) }))).toBe('accepted');
    expect(verdict(report({ denials: rows(257) }))).toBe('denials');
  });

  test.each([
    ['empty instance', report({ instance: '' }), 'instance'],
    ['instance with a space', report({ instance: 'web 1' }), 'instance'],
    ['instance with a control character', report({ instance: 'web\n1' }), 'instance'],
    ['instance over 256 characters', report({ instance: 'x'.repeat(257) }), 'instance'],
    ['checked_at negative', report({ checked_at_unix_ms: '-1' }), 'checked_at_unix_ms'],
    ['checked_at not decimal', report({ checked_at_unix_ms: '1e12' }), 'checked_at_unix_ms'],
    ['checked_at past year 9999', report({ checked_at_unix_ms: '999999999999999' }), 'checked_at_unix_ms'],
    ['listener name with upper case', report({ served: served(1, { listener: 'In' }) }), 'served[0].listener'],
    ['listener name of 64 characters', report({ served: served(1, { listener: 'a'.repeat(64) }) }), 'served[0].listener'],
    ['listener listed twice', report({ served: [...served(1), ...served(1)] }), 'served[1].listener'],
    ['serial in upper case', report({ served: served(1, { serial: '0A1B' }) }), 'served[0].serial'],
    ['serial with an odd digit count', report({ served: served(1, { serial: 'a1b' }) }), 'served[0].serial'],
    ['serial over 20 bytes', report({ served: served(1, { serial: '1'.repeat(42) }) }), 'served[0].serial'],
    ['SQL in a serial', report({ served: served(1, { serial: "0a'; DROP TABLE proxy_reports;--" }) }), 'served[0].serial'],
    ['not_after not a number', report({ served: served(1, { not_after_unix_ms: 'soon' }) }), 'served[0].not_after_unix_ms'],
    ['policy not a policy name', report({ denials: [denial({ policy: 'Api Allow' })] }), 'denials[0].policy'],
    ['policy over 253 characters', report({ denials: [denial({ policy: 'a'.repeat(254) })] }), 'denials[0].policy'],
    ['outcome neither deny nor audit', report({ denials: [denial({ outcome: 'allow' })] }), 'denials[0].outcome'],
    ['(policy, outcome) twice', report({ denials: [denial(), denial({ count: '1' })] }), 'denials[1]'],
    ['count negative', report({ denials: [denial({ count: '-2' })] }), 'denials[0].count'],
    ['count beyond 2^53', report({ denials: [denial({ count: '9007199254740993' })] }), 'denials[0].count'],
    ['caller not a SPIFFE ID', report({ denials: [denial({ last_caller: 'https://example.org/web' })] }), 'denials[0].last_caller'],
    ['caller over 2048 bytes', report({ denials: [denial({ last_caller: `spiffe://example.org/${'a'.repeat(2048)}` })] }), 'denials[0].last_caller'],
  ])('refused: %s', (_what, msg, field) => {
    expect(verdict(msg)).toBe(field);
  });
});

describe('Config/Report over gRPC', () => {
  const time = new FakeTime(T0);
  const td = TrustDomain.parse('example.org');
  const registry = new Registry();
  const banned = new Set<string>();
  const warnings: string[] = [];
  const log = { info: () => {}, error: () => {}, warn: (o: Record<string, unknown>, m: string) => warnings.push(`${m} ${JSON.stringify(o)}`) };
  const maxRequestBytes = 64 * 1024;
  let ca: TestCa;
  let store: ControlPlaneStore;
  let server: GrpcServer;
  let cleanup: () => Promise<void>;
  let proxy: ControlPlaneClient;

  beforeAll(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    ca = await TestCa.create({ nowMs: time.nowMs() });
    store = await openSqliteStore(tmp.dir);
    const own = await ca.mintSvid(CONTROL_PLANE_ID);
    server = new GrpcServer({ listen: '127.0.0.1:0', identity: { certChainPem: own.chainPem, keyPem: own.keyPem, clientCasPem: ca.bundlePem() }, handshakeTimeoutMs: 5_000, headersTimeoutMs: 5_000, maxConnections: 16, maxReceiveBytes: maxRequestBytes * 4, timers: realTimers, nowMs: systemClock.nowMs });
    const svids = new SvidAttestor(() => TrustBundle.parse(td, ca.bundlePem()), time);
    const admit = (id: string) => {
      if (banned.has(id)) throw new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED');
    };
    const handlers = reportHandlers({ svids, peerChain: (call) => server.chainOf(call), admit, reports: store.reports, clock: time, replica: () => `cp-a ${server.address}`, rateLimit: { burst: 5, perMinute: 6 }, log, ...reportMetrics(registry) });
    server.addService(guardedService(loadTesseraServices().config.service, maxRequestBytes), handlers);
    await server.start();
    proxy = new ControlPlaneClient({ address: server.address, trustDomain: td, bundles: () => new TrustBundleSet([TrustBundle.parse(td, ca.bundlePem())]), clock: time, deadlineClock: systemClock });
  });
  afterAll(async () => {
    proxy.close();
    await server.stop(0);
    await store.close();
    await cleanup();
  });

  const counted = async (code: string) => sumSeries(await registry.metrics(), 'tessera_cp_proxy_report_refusals_total', { code });
  const asWeb = async (id = WEB) => issuedSvid(await ca.mintSvid(id), ca, id);

  test("a report is stored under the caller's SVID ID with this replica's clock and name, and replaces the previous one", async () => {
    const me = await asWeb();
    const ack = await proxy.report(me, report({ instance: 'web-1/10' }));
    expect(ack).toEqual({ received_at_unix_ms: String(T0), replica: `cp-a ${server.address}` });
    time.advance(30_000);
    await proxy.report(me, report({ instance: 'web-1/10', checked_at_unix_ms: String(T0 + 30_000), denials: [] }));
    const stored = (await store.reports.list(0)).filter((r) => r.instance === 'web-1/10');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ spiffeId: WEB, checkedAtMs: T0 + 30_000, receivedAtMs: T0 + 30_000, replica: `cp-a ${server.address}`, denials: [] });
    expect(sumSeries(await registry.metrics(), 'tessera_cp_proxy_reports_total', { result: 'stored' })).toBe(2);
  });

  test('the SPIFFE ID comes from the SVID: two workloads reporting the same instance name stay apart', async () => {
    const api = 'spiffe://example.org/ns/default/sa/api';
    await proxy.report(await asWeb(api), report({ instance: 'shared/1' }));
    const other = new ControlPlaneClient({ address: server.address, trustDomain: td, bundles: () => new TrustBundleSet([TrustBundle.parse(td, ca.bundlePem())]), clock: time, deadlineClock: systemClock });
    try {
      await other.report(await asWeb(), report({ instance: 'shared/1' }));
    } finally {
      other.close();
    }
    expect((await store.reports.list(0)).filter((r) => r.instance === 'shared/1').map((r) => r.spiffeId).sort()).toEqual([api, WEB]);
  });

  test('no client SVID: UNAUTHENTICATED; a banned ID: PERMISSION_DENIED with the ban code; nothing stored', async () => {
    const before = (await store.reports.list(0)).length;
    const c = controlPlaneClients(server.address, ca.bundlePem());
    const err = await new Promise<grpc.ServiceError | null>((ok) => c.config.Report!(report({ instance: 'anon/1' }), { deadline: Date.now() + 5_000 }, (e: grpc.ServiceError | null) => ok(e)));
    c.close();
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
    // Told what is recorded: no certificate at all (before 2026-12-06 SVID_INVALID; audit 35a F3).
    expect(errorCode(err)).toBe('TESSERA_ERR_ATTESTATION_NO_EVIDENCE');

    const id = 'spiffe://example.org/ns/default/sa/stolen';
    banned.add(id);
    const refused = await proxy.report(await asWeb(id), report({ instance: 'stolen/1' })).catch((e: TesseraError) => e);
    expect(refused).toBeInstanceOf(TesseraError);
    // The report's own code, not an SVID request's.
    expect((refused as TesseraError).code).toBe('TESSERA_ERR_REPORT_FAILED');
    expect((refused as TesseraError).details['grpcCode']).toBe(grpc.status.PERMISSION_DENIED);
    expect((refused as TesseraError).message).toContain('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect((await store.reports.list(0)).length).toBe(before);
    expect(await counted('TESSERA_ERR_ATTESTATION_NO_EVIDENCE')).toBe(1);
    expect(await counted('TESSERA_ERR_REVOCATION_ID_BANNED')).toBe(1);
  });

  test('each call fails under its own code: a JWT mint, an SVID renewal (this server has no Identity service: UNIMPLEMENTED)', async () => {
    const me = await asWeb('spiffe://example.org/ns/default/sa/codes');
    const mint = (await proxy.mintJwtSvid(me, ['aud']).catch((e: TesseraError) => e)) as TesseraError;
    expect(mint.code).toBe('TESSERA_ERR_JWT_SVID_UNAVAILABLE');
    expect(mint.details['grpcCode']).toBe(grpc.status.UNIMPLEMENTED);
    const renew = (await proxy.renew(Buffer.from('not a csr'), me).catch((e: TesseraError) => e)) as TesseraError;
    expect(renew.code).toBe('TESSERA_ERR_IDENTITY_SIGN_FAILED');
    expect(renew.details['grpcCode']).toBe(grpc.status.UNIMPLEMENTED);
  });

  test('over its bounds: INVALID_ARGUMENT with TESSERA_ERR_REPORT_INVALID; over the request cap: RESOURCE_EXHAUSTED; counted', async () => {
    const me = await asWeb('spiffe://example.org/ns/default/sa/big');
    const e1 = (await proxy.report(me, report({ instance: 'big/1', served: served(257) })).catch((e: TesseraError) => e)) as TesseraError;
    expect(e1.details['grpcCode']).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e1.message).toContain('TESSERA_ERR_REPORT_INVALID');
    // The peer hears the code only; the field is in the control plane's log.
    expect(e1.message).not.toContain('served');
    expect(warnings.some((w) => w.includes('a proxy report was refused') && w.includes('served: more than 256 listeners') && w.includes('sa/big'))).toBe(true);
    const long = Array.from({ length: 200 }, (_, i) => denial({ policy: `p-${i}`, last_caller: `spiffe://example.org/${'x'.repeat(400)}` }));
    const e2 = (await proxy.report(me, report({ instance: 'big/1', denials: long })).catch((e: TesseraError) => e)) as TesseraError;
    expect(e2.details['grpcCode']).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e2.message).toContain('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE');
    expect((await store.reports.list(0)).some((r) => r.instance === 'big/1')).toBe(false);
    expect(await counted('TESSERA_ERR_REPORT_INVALID')).toBe(1);
    expect(await counted('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE')).toBe(1);
  });

  const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: TesseraError) => String(e.message.match(/TESSERA_ERR_\w+/)?.[0]));

  test('a SPIFFE ID that reports too often gets RESOURCE_EXHAUSTED until its bucket refills, whatever instance it names; other IDs are not held back', async () => {
    const me = await asWeb('spiffe://example.org/ns/default/sa/chatty');
    const results: string[] = [];
    for (let i = 0; i < 7; i++) results.push(await outcome(proxy.report(me, report({ instance: 'chatty/1' }))));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'TESSERA_ERR_REPORT_RATE_LIMITED', 'TESSERA_ERR_REPORT_RATE_LIMITED']);
    // A made-up instance is no fresh bucket (the audit's flood named a new one each time).
    expect(await outcome(proxy.report(me, report({ instance: 'chatty/2' })))).toBe('TESSERA_ERR_REPORT_RATE_LIMITED');
    expect(await outcome(proxy.report(me, report({ instance: `fresh-${'x'.repeat(40)}` })))).toBe('TESSERA_ERR_REPORT_RATE_LIMITED');
    expect(await outcome(proxy.report(await asWeb('spiffe://example.org/ns/default/sa/quiet'), report({ instance: 'quiet/1' })))).toBe('ok');
    time.advance(10_000); // one token back at 6 per minute
    expect(await outcome(proxy.report(me, report({ instance: 'chatty/1' })))).toBe('ok');
    expect(await counted('TESSERA_ERR_REPORT_RATE_LIMITED')).toBe(4);
  });

  test('a SPIFFE ID keeps at most 64 instances: a new one past it replaces that ID\'s oldest, other IDs untouched', async () => {
    const id = 'spiffe://example.org/ns/default/sa/many';
    const me = await asWeb(id);
    const others = (await store.reports.list(0)).filter((r) => r.spiffeId !== id).length;
    for (let i = 0; i < 70; i++) {
      time.advance(10_000); // within the test's rate (6 a minute)
      expect(await outcome(proxy.report(me, report({ instance: `many/${i}`, checked_at_unix_ms: String(time.nowMs()) })))).toBe('ok');
    }
    const mine = (await store.reports.list(0)).filter((r) => r.spiffeId === id).map((r) => r.instance);
    expect(mine).toHaveLength(64);
    expect(new Set(mine)).toEqual(new Set(Array.from({ length: 64 }, (_, i) => `many/${i + 6}`)));
    expect((await store.reports.list(0)).filter((r) => r.spiffeId !== id)).toHaveLength(others);
  });
});
