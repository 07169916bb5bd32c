// Config/Watch builds each SPIFFE ID's snapshot once per published version and shares it among that ID's streams
// (an outside audit, 39b F1: every open and every publish to every stream rebuilt it, so 100 opens under a
// 2,000-rule policy held the event loop 3.3 s), and what every ID shares (each policy's JSON and encoding) once per
// version for all IDs (audit 40a: each distinct ID's first open re-read the whole policy set). Builds are counted by
// the hub's onBuild; the reads of the rules of a policy selecting every caller count how often it was prepared.
// Opens are rate-limited per ID; a grant that expires is still left out of new opens.
// Audit 40a F4: by default one ID may open maxStreamsPerId at once (a Deployment reconnecting after a failover), then
// limits.streamOpensPerSecond; a fixed 256 then 10 a second made 1,024 proxies of one ID wait ~75 s.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import { sharedResponseEncoding } from '../../../../control-plane/src/api/shared-encoding.js';
import { enroll, watch } from '../../../helpers/api-client.js';
import { apiPerFile } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { controlPlaneClients, errorCode } from '../../../helpers/control-plane.js';
import { until } from '../../../helpers/until.js';

const SA = 'spiffe://example.org/ns/default/sa';

describe('Config/Watch snapshots shared per SPIFFE ID', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  let builds = 0;
  let paths = ['/v1'];
  const counted: AuthorizationPolicy = {
    name: 'counted',
    selector: `${SA}/*`,
    action: 'ALLOW',
    mode: 'enforce',
    get rules() {
      builds++;
      return [{ from: [`${SA}/web`], to: { paths } }];
    },
  };
  const grants: BreakGlassGrant[] = [];
  const t = apiPerFile(time, { policies: () => [counted], grants: () => grants });

  test('N streams of one ID cost one build per publish, M distinct IDs cost M; the policy is read once per version for all', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), `${SA}/many`);
    const others = await Promise.all(['b', 'c', 'd'].map(async (n) => (await enroll(t.api, time.nowMs(), `${SA}/${n}`)).svid));
    const before = { reads: builds, ...t.api.snapshotBuilds() };
    const many = Array.from({ length: 6 }, () => watch(t.api, svid));
    await until('six streams of one ID served', () => many.every((w) => w.snapshots.length === 1));
    expect(builds - before.reads).toBe(1);
    const one = t.api.snapshotBuilds().builds - before.builds;
    const rest = others.map((s) => watch(t.api, s));
    await until('three more IDs served', () => rest.every((w) => w.snapshots.length === 1));
    // Before stop 51 each ID's build wrote the policy's JSON again (4 reads here).
    expect(builds - before.reads).toBe(1);
    expect([one, t.api.snapshotBuilds().builds - before.builds]).toEqual([1, 4]);

    paths = ['/v2']; // a content change every stream sees
    const atPublish = { reads: builds, ...t.api.snapshotBuilds() };
    await t.api.hub.publish();
    await until('every stream has the new snapshot', () => [...many, ...rest].every((w) => w.snapshots.length === 2));
    expect(builds - atPublish.reads).toBe(1);
    expect(t.api.snapshotBuilds().builds - atPublish.builds).toBe(4);
    const second = many.map((w) => w.snapshots[1]!);
    expect(new Set(second.map((s) => s.version)).size).toBe(1);
    expect(second.every((s) => s.policies[0]!.json.includes('/v2'))).toBe(true);
    for (const w of [...many, ...rest]) w.cancel();
    await until('all gone', () => t.api.hub.watchers === 0);
  });

  test('a new stream does not get a grant that expired after its ID\'s snapshot was built', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), `${SA}/granted`);
    grants.push({ id: 'g1', to: `${SA}/granted`, from: [`${SA}/web`], expiresAtMs: time.nowMs() + 10_000, reason: 'test' });
    await t.api.hub.publish();
    const a = watch(t.api, svid);
    await until('served with the grant', () => a.snapshots.length === 1);
    expect(a.snapshots[0]!.break_glass.map((g) => g.id)).toEqual(['g1']);
    time.advance(10_000);
    const b = watch(t.api, svid);
    await until('served without it', () => b.snapshots.length === 1);
    expect(b.snapshots[0]!.break_glass).toEqual([]);
    a.cancel();
    b.cancel();
    grants.length = 0;
  });
});

describe('Config/Watch opens per SPIFFE ID are rate-limited', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time, { openRate: { burst: 3, perMinute: 6 } });

  test('past the burst an open is refused RESOURCE_EXHAUSTED with its code, other IDs are not; the rate refills', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), `${SA}/fast`);
    for (let i = 0; i < 3; i++) {
      const w = watch(t.api, svid);
      await until('served', () => w.snapshots.length === 1);
      w.cancel();
    }
    const refused = watch(t.api, svid);
    await until('refused', () => refused.ended() !== undefined);
    expect(refused.ended()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, tesseraCode: 'TESSERA_ERR_STREAM_OPEN_RATE_LIMITED' });
    expect(refused.snapshots).toEqual([]);
    const other = watch(t.api, (await enroll(t.api, time.nowMs(), `${SA}/calm`)).svid);
    await until('another ID served', () => other.snapshots.length === 1);
    time.advance(10_000); // one open's worth at 6 a minute
    const later = watch(t.api, svid);
    await until('served again', () => later.snapshots.length === 1);
    for (const w of [other, later]) w.cancel();
  });
});

describe('Config/Watch open rate by default: a burst of maxStreamsPerId, then streamOpensPerSecond', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time, { maxStreamsPerId: 300, streamOpensPerSecond: 50 });

  test('300 proxies of one ID reconnecting at once are all served; then one open per 20 ms', async () => {
    const { svid } = await enroll(t.api, time.nowMs(), `${SA}/fleet`);
    // Six connections carry them (300 TLS handshakes at once are not what this test is about; 50 streams each).
    const clients = Array.from({ length: 6 }, () => controlPlaneClients(t.api.server.address, t.api.bundlePem(), svid));
    const fleet = Array.from({ length: 300 }, (_, i) => {
      const client = clients[i % clients.length]!;
      const call = client.config.Watch!({}) as grpc.ClientReadableStream<unknown>;
      const w = { call, served: false, refused: undefined as string | undefined };
      call.on('data', () => (w.served = true));
      call.on('error', (e: grpc.ServiceError) => (w.refused ??= errorCode(e) ?? String(e.code)));
      return w;
    });
    await until('every one served or refused', () => fleet.every((w) => w.served || w.refused !== undefined), 20_000);
    expect(fleet.filter((w) => !w.served).map((w) => w.refused)).toEqual([]);
    for (const w of fleet) w.call.cancel();
    await until('all gone', () => t.api.hub.watchers === 0);
    for (const c of clients) c.close();
    const refused = watch(t.api, svid);
    await until('refused', () => refused.ended() !== undefined);
    expect(refused.ended()).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, tesseraCode: 'TESSERA_ERR_STREAM_OPEN_RATE_LIMITED' });
    time.advance(20); // one open's worth at 50 a second
    const later = watch(t.api, svid);
    await until('served again', () => later.snapshots.length === 1);
    later.cancel();
  });
});

test('a server-streaming response object is encoded once however many streams write it', () => {
  let encodes = 0;
  const def = { Watch: { path: '/x/Watch', requestStream: false, responseStream: true, requestSerialize: (v: unknown) => Buffer.from(String(v)), requestDeserialize: (b: Buffer) => b, responseSerialize: (v: unknown) => {
        encodes++;
        return Buffer.from(JSON.stringify(v));
      }, responseDeserialize: (b: Buffer) => b } };
  const shared = sharedResponseEncoding(def as unknown as grpc.ServiceDefinition)['Watch']!;
  const message = { version: '1' };
  const first = shared.responseSerialize(message);
  expect(shared.responseSerialize(message)).toBe(first);
  expect(encodes).toBe(1);
  shared.responseSerialize({ version: '1' });
  expect(encodes).toBe(2);
});
