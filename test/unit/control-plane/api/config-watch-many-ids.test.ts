// Config/Watch with many distinct SPIFFE IDs under a large policy set (an outside audit, 40a: 100 IDs x 10 streams
// under a 2,000-rule policy held the control plane's /ready for 3-4 s). Each ID's build looks only at the policies
// selecting it: the selectors of the set are read once per set, not once per ID (counted by a getter). Snapshots
// are written a bounded slice per turn of the event loop: a publish to many streams of a large snapshot is many
// turns (counted by a setImmediate ticker against the hub's writes), and each stream still gets only newer versions.
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import type { AuthorizationPolicy } from '../../../../common/policy/policy-types.js';
import { compileIdPattern } from '../../../../common/spiffe/match.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { SEND_SLICE_BYTES, SEND_SLICE_STREAMS } from '../../../../control-plane/src/api/config-service.js';
import { enroll, watch } from '../../../helpers/api-client.js';
import { apiPerFile } from '../../../helpers/control-plane-parts.js';
import { controlPlaneClients } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { until } from '../../../helpers/until.js';

const SA = 'spiffe://example.org/ns/default/sa';
const IDS = 20;

describe('Config/Watch for many distinct SPIFFE IDs', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  let selectorReads = 0;
  const policy = (name: string, selector: string, action: 'ALLOW' | 'DENY' = 'ALLOW'): AuthorizationPolicy => ({
    name,
    get selector() {
      selectorReads++;
      return selector;
    },
    action,
    mode: 'enforce',
    rules: [{ from: [`${SA}/caller`] }],
  });
  // 10 exact policies per ID, a one-segment wildcard, a trust-domain-wide DENY and a policy of another trust domain.
  const policies = Object.freeze([
    ...Array.from({ length: IDS * 10 }, (_, i) => policy(`exact-${String(i).padStart(3, '0')}`, `${SA}/w${i % IDS}`)),
    policy('any-sa', `${SA}/*`),
    policy('deny-all', 'spiffe://example.org/**', 'DENY'),
    policy('elsewhere', 'spiffe://other.org/**'),
  ]);
  const t = apiPerFile(time, { policies: () => policies });

  test('each ID gets exactly the policies selecting it; the set is read once, not once per ID; a publish reads it no more', async () => {
    const svids = await Promise.all(Array.from({ length: IDS }, async (_, i) => (await enroll(t.api, time.nowMs(), `${SA}/w${i}`)).svid));
    const before = selectorReads;
    const streams = svids.map((s) => watch(t.api, s));
    await until('every ID served', () => streams.every((w) => w.snapshots.length === 1));
    // Preparing the set reads each selector twice (its index entry, its JSON); before stop 51 every ID's build read
    // every selector again (here 20 x 203).
    expect(selectorReads - before).toBeLessThanOrEqual(2 * policies.length);
    expect(t.api.snapshotBuilds()).toEqual({ builds: IDS, examined: IDS * 12 });
    const sources = policies.map((p) => ({ name: p.name, selector: compileIdPattern(p.selector) }));
    const afterOpens = selectorReads;
    streams.forEach((w, i) => {
      const id = SpiffeId.parse(`${SA}/w${i}`);
      const want = sources.filter((p) => p.selector.matches(id)).map((p) => p.name).sort();
      expect(w.snapshots[0]!.policies.map((p) => p.name)).toEqual(want);
      expect(want).toHaveLength(12);
    });

    // A ban changes every stream's content, not the policy set: the same set is not prepared again.
    await t.api.revocations.ban({ kind: 'spiffe_id', value: `${SA}/gone`, reason: 'test', createdBy: 'test' });
    await until('every stream has the new snapshot', () => streams.every((w) => w.snapshots.length === 2));
    expect(selectorReads).toBe(afterOpens);
    for (const w of streams) w.cancel();
    await until('all gone', () => t.api.hub.watchers === 0);
  });
});

describe('Config/Watch writes large snapshots a bounded slice per turn', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  let paths = ['/v1'];
  // ~350 KB of JSON selecting every caller (the audit's 2,000 rules).
  const big: AuthorizationPolicy = {
    name: 'big',
    selector: `${SA}/*`,
    action: 'ALLOW',
    mode: 'enforce',
    get rules() {
      return Array.from({ length: 2_000 }, (_, i) => ({ from: [`spiffe://example.org/ns/team-${i}/sa/*`, `spiffe://example.org/ns/team-${i}/sa/x/**`], to: { methods: ['GET', 'POST'], paths: [...paths, `/svc/${i}/**`] } }));
    },
  };
  const t = apiPerFile(time, { policies: () => [big] });

  test('opens and a publish to 40 streams of two IDs: at most one slice of writes per turn; versions only grow', async () => {
    const clients = await Promise.all(['a', 'b'].map(async (n) => controlPlaneClients(t.api.server.address, t.api.bundlePem(), (await enroll(t.api, time.nowMs(), `${SA}/${n}`)).svid)));
    // A ticker that runs once per turn of the event loop, noting the most writes between two of its runs.
    let most = 0;
    let ticking = true;
    let last = t.api.snapshotsSent();
    const tick = () => {
      const now = t.api.snapshotsSent();
      most = Math.max(most, now - last);
      last = now;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const streams = clients.flatMap((c) =>
      Array.from({ length: 20 }, () => {
        const s = { versions: [] as number[], size: 0, error: undefined as grpc.ServiceError | undefined };
        const call = c.config.Watch!({}) as grpc.ClientReadableStream<ConfigSnapshotMsg>;
        call.on('data', (m: ConfigSnapshotMsg) => {
          s.versions.push(Number(m.version));
          s.size = m.policies[0]?.json.length ?? 0;
        });
        call.on('error', (e: grpc.ServiceError) => (s.error ??= e));
        return { s, call };
      }),
    );
    await until('every stream served', () => streams.every(({ s }) => s.versions.length === 1), 30_000);
    expect(streams[0]!.s.size).toBeGreaterThan(300_000);
    // Writes per slice: until the slice's bytes reach the budget; a turn sees one slice, two when a new one was
    // scheduled from I/O in between. Before: a publish wrote every stream of an ID in one turn (20 here).
    const perSlice = Math.min(SEND_SLICE_STREAMS, Math.ceil(SEND_SLICE_BYTES / streams[0]!.s.size));
    paths = ['/v2'];
    most = 0;
    await t.api.hub.publish();
    await until('every stream has the new snapshot', () => streams.every(({ s }) => s.versions.length === 2), 30_000);
    ticking = false;
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2 * perSlice);
    expect(streams.every(({ s }) => s.error === undefined && s.versions[1]! > s.versions[0]!)).toBe(true);
    for (const { call } of streams) call.cancel();
    await until('all gone', () => t.api.hub.watchers === 0);
    for (const c of clients) c.close();
  });
});
