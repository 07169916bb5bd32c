// Config/Watch over a real gRPC server: an authenticated caller gets its snapshot at once and again only when its
// content changes (a new root in the bundle, a deny-list entry); a caller without a valid SVID is refused; the
// stream ends when the caller is banned (PERMISSION_DENIED) or its SVID expires (on the tick), and with OK at
// shutdown; versions keep growing across a restart of the hub.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { ConfigHub } from '../../../../control-plane/src/api/config-service.js';
import { SvidAttestor } from '../../../../control-plane/src/attestation/svid-attestor.js';
import { enroll, watch } from '../../../helpers/api-client.js';
import { HOUR_MS, apiPerFile } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { until } from '../../../helpers/until.js';

describe('Config/Watch', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time);

  test('the snapshot comes at once, again when the bundle changes, and not for a publish that changes nothing', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/bundle');
    const w = watch(t.api, svid);
    await until('first snapshot', () => w.snapshots.length === 1);
    expect(w.snapshots[0]!.bundles[0]!.x509_authorities).toHaveLength(1);
    expect(t.api.hub.watchers).toBe(1);

    await t.api.hub.publish(); // nothing this caller sees changed
    await t.api.ca.prepare();
    await t.api.hub.publish();
    await until('snapshot with the prepared root', () => w.snapshots.length >= 2);
    const [first, second] = w.snapshots;
    expect(w.snapshots).toHaveLength(2);
    expect(second!.bundles[0]!.x509_authorities).toHaveLength(2);
    expect(Number(second!.version)).toBeGreaterThan(Number(first!.version));
    // Tidy for the next tests: back to one authority.
    await t.api.ca.retire(t.api.ca.current().authorities.find((a) => a.record.state === 'prepared')!.record.id);
    w.cancel();
    await until('watcher forgotten', () => t.api.hub.watchers === 0);
  });

  test('a caller without a client SVID is refused with UNAUTHENTICATED and the code that is recorded (no evidence)', async () => {
    const w = watch(t.api);
    await until('refusal', () => w.ended() !== undefined);
    // Before 2026-12-06 it was told SVID_INVALID while the audit log and metrics said NO_EVIDENCE (audit 34b F1).
    expect(w.ended()).toEqual({ code: grpc.status.UNAUTHENTICATED, tesseraCode: 'TESSERA_ERR_ATTESTATION_NO_EVIDENCE' });
    expect(w.snapshots).toEqual([]);
  });

  test('banning the caller ends its stream with the ban code; a banned caller cannot start one', async () => {
    const id = 'spiffe://example.org/ns/default/sa/banned';
    const { svid } = await enroll(t.api, time.nowMs(), id);
    const bystander = watch(t.api, (await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/bystander')).svid);
    const w = watch(t.api, svid);
    await until('both streams open', () => w.snapshots.length === 1 && bystander.snapshots.length === 1);
    await t.api.revocations.ban({ kind: 'spiffe_id', value: id, reason: 'stolen', createdBy: 'test' });
    await until('banned stream ends', () => w.ended() !== undefined);
    expect(w.ended()).toEqual({ code: grpc.status.PERMISSION_DENIED, tesseraCode: 'TESSERA_ERR_REVOCATION_ID_BANNED' });
    // The other caller stays, and learns the deny-list.
    await until('bystander sees the deny-list', () => bystander.snapshots.length === 2);
    expect(bystander.snapshots[1]!.deny_list.spiffe_ids).toEqual([id]);
    expect(bystander.ended()).toBeUndefined();

    const again = watch(t.api, svid);
    await until('refused at start', () => again.ended() !== undefined);
    expect(again.ended()).toEqual({ code: grpc.status.PERMISSION_DENIED, tesseraCode: 'TESSERA_ERR_REVOCATION_ID_BANNED' });
    bystander.cancel();
  });

  test('the tick ends a stream whose client SVID has expired, and only then', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/expiring');
    const w = watch(t.api, svid);
    await until('open', () => w.snapshots.length === 1);
    time.advance(HOUR_MS - 1_000);
    t.api.hub.tick();
    time.advance(1_000);
    t.api.hub.tick();
    await until('expired stream ends', () => w.ended() !== undefined);
    expect(w.ended()).toEqual({ code: grpc.status.UNAUTHENTICATED, tesseraCode: 'TESSERA_ERR_ATTESTATION_SVID_INVALID' });
  });

  test('endAll closes every stream with OK; a new hub on the same store starts at a higher version', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/shutdown');
    const w = watch(t.api, svid);
    await until('open', () => w.snapshots.length === 1);
    const before = t.api.hub.version;
    t.api.hub.endAll();
    await until('stream ends', () => w.ended() !== undefined);
    expect(w.ended()?.code).toBe(grpc.status.OK);
    expect(t.api.hub.watchers).toBe(0);
    const next = await ConfigHub.open({
      inputs: { bundles: () => [], policies: () => [], grants: () => [], denyList: () => ({ spiffeIds: [], serials: [] }) },
      svids: new SvidAttestor(() => t.api.ca.current().bundle, time),
      admit: () => {},
      peerChain: () => [],
      clock: time,
      nextVersion: () => t.api.store.meta.increment('config.snapshot_version'),
    });
    expect(next.version).toBe(before + 1);
  });

  test('publishes run one at a time: versions are asked for in order and reported in order; a failed one is reported', async () => {
    const pending: ((v: number) => void)[] = [];
    const failures: unknown[] = [];
    const versions: number[] = [];
    let next = 100;
    let failNext = false;
    const hub = await ConfigHub.open({
      inputs: { bundles: () => [], policies: () => [], grants: () => [], denyList: () => ({ spiffeIds: [], serials: [] }) },
      svids: new SvidAttestor(() => t.api.ca.current().bundle, time),
      admit: () => {},
      peerChain: () => [],
      clock: time,
      nextVersion: () => {
        if (failNext) return Promise.reject(new Error('database down'));
        if (next === 100) return Promise.resolve(next++);
        return new Promise<number>((resolve) => pending.push(resolve));
      },
      onVersion: (v) => versions.push(v),
      onPublishError: (e) => failures.push(e),
    });
    const a = hub.publish();
    const b = hub.publish();
    await until('the first publish asks for its version', () => pending.length === 1, 2_000, 1);
    // The second waits for the first: it has not asked yet.
    expect(pending).toHaveLength(1);
    pending[0]!(101);
    await a;
    await until('the second publish asks for its version', () => pending.length === 2, 2_000, 1);
    pending[1]!(102);
    await b;
    expect(versions).toEqual([100, 101, 102]);
    failNext = true;
    await hub.publish();
    expect(hub.version).toBe(102);
    expect(failures.map((e) => (e as Error).message)).toEqual(['database down']);
  });
});

describe('Config/Watch streams per SPIFFE ID', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  // The open rate's burst is maxStreamsPerId by default; these tests are about the count, so opens are not limited.
  const t = apiPerFile(time, { maxStreamsPerId: 2, openRate: { burst: 1_000, perMinute: 60_000 } });

  test('one more than limits.maxStreamsPerId under one ID is refused with RESOURCE_EXHAUSTED; other IDs and a freed slot are not', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/many');
    // Two SVIDs of the same ID (two pods of one Deployment) count together.
    const { svid: sibling } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/many');
    const a = watch(t.api, svid);
    const b = watch(t.api, sibling);
    await until('two streams open', () => a.snapshots.length === 1 && b.snapshots.length === 1);
    const c = watch(t.api, svid);
    await until('the third refused', () => c.ended() !== undefined);
    expect(c.ended()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, tesseraCode: 'TESSERA_ERR_STREAMS_PER_ID_LIMIT' });
    expect(c.snapshots).toEqual([]);
    const other = watch(t.api, (await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/other')).svid);
    await until('another ID is served', () => other.snapshots.length === 1);
    a.cancel();
    await until('the slot is free', () => t.api.hub.watchers === 2);
    const d = watch(t.api, svid);
    await until('a stream in the freed slot', () => d.snapshots.length === 1);
    expect(d.ended()).toBeUndefined();
    for (const w of [b, d, other]) w.cancel();
  });

  test('streams cancelled as soon as they are opened give their slots back (a fast canceller is not refused for good)', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/churn');
    for (let i = 0; i < 40; i++) {
      const w = watch(t.api, svid);
      if (i % 2) w.cancel();
      else setImmediate(() => w.cancel());
    }
    await until('every churned stream gone', () => t.api.hub.watchers === 0, 5_000);
    const [x, y] = [watch(t.api, svid), watch(t.api, svid)];
    await until('two new streams admitted', () => x.snapshots.length === 1 && y.snapshots.length === 1);
    x.cancel();
    y.cancel();
  });
});

// An outside audit: 1,000 Watch streams that never read (a zero HTTP/2 window) and 200 ban changes grew the control
// plane's heap by 1.8 KB per stream per change, without bound. Each stream now has one snapshot on its way at most.
describe('Config/Watch to a caller that does not read', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time);

  test('changes while it does not read write nothing more; once it reads it gets its first snapshot, then the newest', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), 'spiffe://example.org/ns/default/sa/stalled');
    // A zero window for every stream: the server can put no DATA on the stream until the client grants some.
    const session = http2.connect(`https://${t.api.server.address}`, { ca: t.api.bundlePem(), cert: svid.chainPem, key: svid.keyPem, checkServerIdentity: () => undefined, settings: { initialWindowSize: 0 } });
    try {
      const req = session.request({ ':method': 'POST', ':path': '/tessera.config.v1.Config/Watch', 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.end(Buffer.alloc(5)); // one empty WatchRequest
      await until('watching', () => t.api.hub.watchers === 1);
      await until('the first snapshot written', () => t.api.snapshotsSent() === 1);
      for (let i = 0; i < 30; i++) await t.api.revocations.ban({ kind: 'spiffe_id', value: `spiffe://example.org/ns/x/sa/b${i}`, reason: 'test', createdBy: 'test' });
      await t.api.hub.settled();
      expect(t.api.snapshotsSent()).toBe(1);
      expect(chunks).toEqual([]);

      // The caller reads again: the first snapshot, then one more with every ban.
      session.settings({ initialWindowSize: 1 << 20 });
      await until('the newest snapshot written', () => t.api.snapshotsSent() === 2);
      const messages = () => {
        const all = Buffer.concat(chunks);
        const out: Buffer[] = [];
        for (let at = 0; at + 5 <= all.length && at + 5 + all.readUInt32BE(at + 1) <= all.length; at += 5 + all.readUInt32BE(at + 1)) out.push(all.subarray(at + 5, at + 5 + all.readUInt32BE(at + 1)));
        return out;
      };
      await until('two snapshots read', () => messages().length === 2);
      const [first, newest] = messages();
      expect(first!.includes('spiffe://example.org/ns/x/sa/b0')).toBe(false);
      for (let i = 0; i < 30; i++) expect(newest!.includes(`spiffe://example.org/ns/x/sa/b${i}`)).toBe(true);
      // Caught up: the next change is written at once.
      await t.api.revocations.ban({ kind: 'spiffe_id', value: 'spiffe://example.org/ns/x/sa/late', reason: 'test', createdBy: 'test' });
      await until('the next snapshot read', () => messages().length === 3);
      expect(t.api.snapshotsSent()).toBe(3);
      req.close();
    } finally {
      session.close();
    }
  });
});
