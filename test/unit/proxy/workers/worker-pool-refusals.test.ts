// WorkerPool's view of a snapshot part a worker refused (review 27c F4), with real child processes speaking the IPC
// protocol: the refusal is counted by part, /ready names the worker while it runs the older part, a later snapshot
// of that part taken clears it, and a restarted worker starts with no refusal. The real worker (worker-main.ts)
// validates each part with the same code the primary already ran it through, so no input sent to a proxy from
// outside makes a worker refuse what its primary took: the stand-in refuses a policies version named "bad".
import pino from 'pino';
import { afterEach, expect, test } from 'vitest';
import { realTimers } from '../../../../shared-io/timers.js';
import type { PoliciesWire } from '../../../../proxy/src/workers/worker-messages.js';
import { WorkerPool } from '../../../../proxy/src/workers/worker-pool.js';
import { until } from '../../../helpers/until.js';

const WORKER = `
const take = (parts) => {
  if (!parts.policies) return;
  if (parts.policies.version === 'bad') process.send({ type: 'refused', part: 'policies', code: 'TESSERA_ERR_POLICY_INVALID' });
  else if (parts.policies.version === 'good') process.send({ type: 'recovered', part: 'policies' });
};
process.on('message', (m) => {
  if (m.type === 'ping') return void process.send({ type: 'pong' });
  if (m.type === 'init') { take(m.parts); process.send({ type: 'listening', ports: {} }); }
  if (m.type === 'update') take(m.parts);
});
`;

const policies = (version: string): PoliciesWire => ({ policies: [], grants: [], version });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('a refused snapshot part is counted, keeps the pool not ready until a later one is taken, and a restart starts clean', async () => {
  const refusals: { slot: number; part: string; code: string }[] = [];
  const pool = new WorkerPool({
    count: 2,
    command: process.execPath,
    args: ['-e', WORKER],
    env: process.env,
    configText: '',
    configFile: 'none.yaml',
    drainGraceMs: 2_000,
    timers: realTimers,
    nowMs: () => Date.now(),
    log: pino({ level: 'silent' }),
    onRestart: () => {},
    onRestartFailed: () => {},
    onHung: () => {},
    onRefused: (slot, part, code) => void refusals.push({ slot, part, code }),
    backoff: { initialMs: 10, maxMs: 40 },
  });
  cleanups.push(() => pool.drain());
  await pool.start({ policies: policies('v1') });
  expect(pool.notReadyReason()).toBeUndefined();

  pool.publish({ policies: policies('bad') });
  await until('both refusals reported', () => refusals.length === 2, 10_000, 10);
  expect(refusals.map((r) => [r.part, r.code])).toEqual([['policies', 'TESSERA_ERR_POLICY_INVALID'], ['policies', 'TESSERA_ERR_POLICY_INVALID']]);
  expect(new Set(refusals.map((r) => r.slot))).toEqual(new Set([0, 1]));
  expect(pool.notReadyReason()).toBe('worker 0 refused the policies snapshot (TESSERA_ERR_POLICY_INVALID)');
  expect(pool.describe().map((w) => w.refused)).toEqual([{ policies: 'TESSERA_ERR_POLICY_INVALID' }, { policies: 'TESSERA_ERR_POLICY_INVALID' }]);

  // Another part does not clear it: only a later snapshot of the refused part taken does.
  pool.publish({ denyList: { spiffeIds: [], serials: [] } });
  await new Promise((r) => setTimeout(r, 100));
  expect(pool.notReadyReason()).toMatch(/refused the policies snapshot/);
  pool.publish({ policies: policies('good') });
  await until('the later policies taken everywhere', () => pool.notReadyReason() === undefined, 10_000, 10);
  expect(pool.describe().map((w) => w.refused)).toEqual([{}, {}]);

  // A worker restarted while its part is refused starts with no refusal of its own, until it refuses again.
  pool.publish({ policies: policies('bad') });
  await until('refused again', () => refusals.length === 4, 10_000, 10);
  pool.publish({ policies: policies('v2') }); // the stand-in neither refuses nor acknowledges v2: still behind
  const victim = pool.describe()[1]!;
  process.kill(victim.pid!, 'SIGKILL');
  await until('worker 1 restarted', () => {
    const w = pool.describe()[1]!;
    return w.listening && w.pid !== victim.pid && w.pid !== null;
  }, 20_000, 10);
  expect(pool.describe()[1]!.refused).toEqual({});
  expect(pool.notReadyReason()).toBe('worker 0 refused the policies snapshot (TESSERA_ERR_POLICY_INVALID)');
}, 40_000);
