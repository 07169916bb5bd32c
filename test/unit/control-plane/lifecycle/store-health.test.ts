// The store's health (audit F6): a store failure is logged, each code once per interval with how many were left
// out (before: nothing was logged at all); a fault that means the store cannot take writes makes readiness fail with
// the code, until a probe write succeeds with no failure since it began; a damaged store stays not ready (no probe);
// a refusal that is not a store fault changes nothing; close() stops the probe.
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { PhasedReadiness, storeWritable } from '../../../../control-plane/src/admin/readiness.js';
import { FAILURE_LOG_EVERY_MS } from '../../../../control-plane/src/lifecycle/failure-log.js';
import { STORE_PROBE_MS, StoreHealth } from '../../../../control-plane/src/lifecycle/store-health.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function setup(probe: () => Promise<unknown> = async () => 1) {
  const time = new FakeTime();
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const rec = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, msg, obj });
  const log = { info: rec('info'), warn: rec('warn'), error: rec('error') };
  let probes = 0;
  const health = new StoreHealth({
    clock: time,
    timers: time,
    log,
    probe: () => {
      probes++;
      return probe();
    },
  });
  const readiness = new PhasedReadiness([storeWritable(health)]);
  readiness.serving();
  return { time, lines, health, readiness, probes: () => probes };
}

const flush = () => new Promise((r) => setImmediate(r));
const full = () => new TesseraError('TESSERA_ERR_STORE_FULL', '/data/tessera.db: database or disk is full');

describe('StoreHealth', () => {
  test('a full disk: logged once per interval with the count left out, not ready naming the code, ready again after a probe write', async () => {
    const t = setup();
    for (let i = 0; i < 5; i++) t.health.failed('inventory', 'record', full());
    const logged = t.lines.filter((l) => l.msg === 'a store operation failed');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.obj).toMatchObject({ code: 'TESSERA_ERR_STORE_FULL', area: 'inventory', op: 'record' });
    expect(t.lines.filter((l) => l.level === 'error' && l.msg.startsWith('the store cannot take writes'))).toHaveLength(1);
    expect(t.readiness.notReadyReason()).toMatch(/^the store cannot take writes \(TESSERA_ERR_STORE_FULL, since /);
    // The probe, due one interval after the failure, writes and clears the fault.
    t.time.advance(STORE_PROBE_MS);
    await flush();
    expect(t.probes()).toBe(1);
    expect(t.readiness.notReadyReason()).toBeUndefined();
    expect(t.lines.at(-1)).toMatchObject({ level: 'info', msg: 'the store takes writes again: ready' });
    expect(t.time.pending).toBe(0);
    // Full again a log interval later: logged again, saying how many were left out; not ready again until a probe.
    t.time.advance(FAILURE_LOG_EVERY_MS);
    t.health.failed('tokens', 'create', full());
    const again = t.lines.filter((l) => l.msg === 'a store operation failed');
    expect(again).toHaveLength(2);
    expect(again[1]!.obj).toMatchObject({ leftOut: 4 });
    expect(t.readiness.notReadyReason()).not.toBeUndefined();
    t.time.advance(STORE_PROBE_MS);
    await flush();
    expect(t.probes()).toBe(2);
    expect(t.readiness.notReadyReason()).toBeUndefined();
  });

  test('a probe that fails, or a failure while it runs, keeps it not ready; the probe keeps trying', async () => {
    let fail = true;
    let release: () => void = () => {};
    const t = setup(() => (fail ? Promise.reject(full()) : new Promise<void>((r) => (release = r))));
    t.health.failed('meta', 'increment', full());
    t.time.advance(STORE_PROBE_MS);
    await flush();
    expect(t.readiness.notReadyReason()).not.toBeUndefined();
    fail = false;
    t.time.advance(STORE_PROBE_MS);
    await flush();
    // A larger write fails while the probe's small one is under way: still not ready.
    t.time.advance(1);
    t.health.failed('audit', 'record', full());
    release();
    await flush();
    expect(t.readiness.notReadyReason()).not.toBeUndefined();
    t.time.advance(STORE_PROBE_MS);
    await flush();
    release();
    await flush();
    expect(t.readiness.notReadyReason()).toBeUndefined();
  });

  test('a damaged store stays not ready (no probe: damage does not heal); a refusal that is no store fault changes nothing', async () => {
    const t = setup();
    t.health.failed('reports', 'list', new TesseraError('TESSERA_ERR_STORE_FAILED', 'busy'));
    t.health.failed('x', 'y', new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', 'deadlock', { sqlstate: '40P01' }));
    // Another replica won a compare-and-swap: an outcome its caller handles, not logged as a store failure.
    t.health.failed('ca', 'commit', new TesseraError('TESSERA_ERR_CA_CONFLICT'));
    expect(t.readiness.notReadyReason()).toBeUndefined();
    expect(t.lines.filter((l) => l.msg === 'a store operation failed').map((l) => l.obj['code'])).toEqual(['TESSERA_ERR_STORE_FAILED', 'TESSERA_ERR_STORE_UNAVAILABLE']);
    t.health.failed('revocations', 'all', new TesseraError('TESSERA_ERR_STORE_CORRUPT'));
    t.health.failed('inventory', 'record', full());
    t.time.advance(STORE_PROBE_MS * 3);
    await flush();
    expect(t.probes()).toBe(0);
    expect(t.readiness.notReadyReason()).toMatch(/^the store is damaged \(TESSERA_ERR_STORE_CORRUPT/);
    expect(t.lines.filter((l) => l.msg.startsWith('the store is damaged'))).toHaveLength(1);
  });

  test('PostgreSQL unreachable: not ready until the probe reaches it; close() stops the probe', async () => {
    let up = false;
    const t = setup(() => (up ? Promise.resolve(1) : Promise.reject(new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', 'PostgreSQL x: connect ECONNREFUSED'))));
    t.health.failed('tokens', 'spend', new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', 'PostgreSQL x: connect ECONNREFUSED'));
    expect(t.readiness.notReadyReason()).toContain('TESSERA_ERR_STORE_UNAVAILABLE');
    t.time.advance(STORE_PROBE_MS);
    await flush();
    expect(t.readiness.notReadyReason()).not.toBeUndefined();
    up = true;
    t.time.advance(STORE_PROBE_MS);
    await flush();
    expect(t.readiness.notReadyReason()).toBeUndefined();
    t.health.failed('tokens', 'spend', new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE'));
    t.health.close();
    expect(t.time.pending).toBe(0);
  });
});
