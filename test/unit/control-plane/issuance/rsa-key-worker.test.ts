// RsaKeyWorker with its real thread (the built script in dist/, as the control plane runs it): the verdicts are the
// rules' own; the event loop keeps turning while a 4096-bit key is judged; an urgent key goes before queued background
// ones; the thread stops when idle and starts again; a thread that dies fails its key only; close refuses the rest;
// the urgent queue is bounded and a queued key whose caller left is dropped (audit 40a F3).
import { type KeyObject, createPublicKey, generateKeyPairSync, generatePrimeSync } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rsaKeyWeakness } from '../../../../common/pki/rsa-key-strength.js';
import { RsaKeyWorker, URGENT_QUEUE_MAX } from '../../../../control-plane/src/issuance/rsa-key-worker.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { REPO_ROOT } from '../../../helpers/run.js';

const SCRIPT = pathToFileURL(join(REPO_ROOT, 'dist/control-plane/src/issuance/rsa-key-worker-thread.js'));
const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
const rsa = (n: Buffer, e: string) => createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e }, format: 'jwk' });

let good4096: KeyObject;
let samples: KeyObject[];
const workers: RsaKeyWorker[] = [];
const open = (o: Partial<ConstructorParameters<typeof RsaKeyWorker>[0]> = {}) => {
  const w = new RsaKeyWorker({ timers: realTimers, script: SCRIPT, ...o });
  workers.push(w);
  return w;
};

beforeAll(() => {
  good4096 = generateKeyPairSync('rsa', { modulusLength: 4096 }).publicKey;
  const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
  samples = [good4096, rsa(n, 'Aw'), rsa(Buffer.from(generatePrimeSync(2048)), 'AQAB'), rsa(Buffer.from(generatePrimeSync(1024)), 'AQAB')];
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
});

describe('RsaKeyWorker', () => {
  test("the thread's verdicts are the rules' own (a good key, e = 3, a prime modulus, a small modulus)", async () => {
    const w = open();
    for (const key of samples) expect(await w.judge(spki(key), false)).toBe(rsaKeyWeakness(key));
  });

  test('the event loop keeps turning while a 4096-bit key is judged', async () => {
    const w = open();
    let turns = 0;
    let judged = false;
    const verdict = w.judge(spki(good4096), false).finally(() => (judged = true));
    // Counted, not timed: the rules in this thread would run to the end before a single turn.
    while (!judged && turns < 1_000_000) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    expect(await verdict).toBeNull();
    expect(turns).toBeGreaterThan(1);
  });

  test('an urgent key goes before the background keys queued ahead of it', async () => {
    const w = open();
    const order: string[] = [];
    const ask = (name: string, urgent: boolean) => w.judge(spki(good4096), urgent).then(() => order.push(name));
    await Promise.all([ask('background 1', false), ask('background 2', false), ask('background 3', false), ask('urgent', true)]);
    // The first was on the thread already; the urgent one came next.
    expect(order).toEqual(['background 1', 'urgent', 'background 2', 'background 3']);
  });

  test('idle, the thread stops; the next key starts another', async () => {
    const time = new FakeTime();
    const w = open({ timers: time, idleMs: 60_000 });
    expect(await w.judge(spki(samples[1]!), false)).toMatch(/exponent/);
    expect(w.started).toBe(1);
    time.advance(60_000);
    expect(await w.judge(spki(samples[1]!), true)).toMatch(/exponent/);
    expect(w.started).toBe(2);
  });

  test('a thread that dies fails the key it held, and the next key gets a new thread; after close every key is refused', async () => {
    const w = open({ script: new URL('data:text/javascript,process.exit(3)') });
    await expect(w.judge(spki(good4096), false)).rejects.toThrow(/exited/);
    await expect(w.judge(spki(good4096), false)).rejects.toThrow(/exited/);
    expect(w.started).toBe(2);
    const real = open();
    const queued = [real.judge(spki(good4096), false), real.judge(spki(good4096), false)].map((p) => p.then(String, (e: Error) => e.message));
    await real.close();
    expect(await Promise.all(queued)).toEqual(['the RSA key check thread is closed', 'the RSA key check thread is closed']);
    await expect(real.judge(spki(good4096), true)).rejects.toThrow(/closed/);
  });

  test('the urgent queue holds URGENT_QUEUE_MAX keys: the next is refused ISSUANCE_BUSY; queued keys whose caller left are dropped, not judged, and make room', async () => {
    const w = open();
    const codeOf = (p: Promise<unknown>) => p.then(() => 'judged', (e: unknown) => (e as { code?: string }).code ?? String(e));
    let left = false;
    // The first goes to the thread at once; the next URGENT_QUEUE_MAX wait, half of them for callers that will leave.
    const first = codeOf(w.judge(spki(good4096), true));
    const queued = Array.from({ length: URGENT_QUEUE_MAX }, (_, i) => codeOf(w.judge(spki(samples[1]!), true, i % 2 === 0 ? () => left : undefined)));
    expect(await codeOf(w.judge(spki(samples[1]!), true))).toBe('TESSERA_ERR_ISSUANCE_BUSY');
    left = true;
    const after = codeOf(w.judge(spki(samples[1]!), true));
    const results = await Promise.all([first, ...queued, after]);
    expect(results.filter((r) => r === 'TESSERA_ERR_ISSUANCE_CALLER_GONE')).toHaveLength(URGENT_QUEUE_MAX / 2);
    expect(results.filter((r) => r === 'judged')).toHaveLength(URGENT_QUEUE_MAX / 2 + 2);
  });
});
