// StateStreams, the Workload API's streaming calls' pushes: every push sends the whole current state; a stream whose
// write was refused (its client does not read) is sent nothing more until it drains, then the state as it is then
// (audit 60d F1: FetchJWTBundles queued every bundle change for such a client, without bound).
import { EventEmitter } from 'node:events';
import { expect, test } from 'vitest';
import { StateStreams } from '../../../../proxy/src/workload-api/state-streams.js';

class FakeStream extends EventEmitter {
  cancelled = false;
  writableEnded = false;
  /** What write() answers: false once the client stops reading. */
  accepts = true;
  readonly written: unknown[] = [];

  write(message: unknown): boolean {
    this.written.push(message);
    return this.accepts;
  }

  end(): void {
    this.writableEnded = true;
  }
}

test('a stream gets the state when it opens and at every push', () => {
  let state = 1;
  const streams = new StateStreams<FakeStream>(() => ({ state }));
  const a = new FakeStream();
  streams.open(a);
  state = 2;
  streams.pushAll();
  expect(a.written).toEqual([{ state: 1 }, { state: 2 }]);
  expect(streams.size).toBe(1);
});

test('a client that stops reading gets nothing more however many pushes come, then the newest state once it drains', () => {
  let state = 0;
  const streams = new StateStreams<FakeStream>(() => ({ state }));
  const slow = new FakeStream();
  const reading = new FakeStream();
  streams.open(slow);
  streams.open(reading);
  slow.accepts = false;
  for (state = 1; state <= 1_000; state++) streams.pushAll();
  // The write that was refused, and none after it.
  expect(slow.written).toEqual([{ state: 0 }, { state: 1 }]);
  expect(reading.written).toHaveLength(1_001);
  slow.accepts = true;
  slow.emit('drain');
  expect(slow.written).toEqual([{ state: 0 }, { state: 1 }, { state: 1_001 }]);
  // Caught up: pushes reach it again; a second 'drain' sends nothing twice.
  slow.emit('drain');
  streams.pushAll();
  expect(slow.written).toHaveLength(4);
});

test('a stream that ends leaves the set; cancelled or ended streams are written nothing', () => {
  const streams = new StateStreams<FakeStream>(() => 'state');
  const [a, b, c] = [new FakeStream(), new FakeStream(), new FakeStream()];
  for (const s of [a, b, c]) streams.open(s);
  a.cancelled = true;
  a.emit('cancelled');
  b.emit('close');
  c.writableEnded = true;
  streams.pushAll();
  expect(streams.size).toBe(1);
  expect([a.written.length, b.written.length, c.written.length]).toEqual([1, 1, 1]);
});

test('no state yet: nothing is written; endAll ends every open stream', () => {
  let state: string | undefined;
  const streams = new StateStreams<FakeStream>(() => state);
  const a = new FakeStream();
  streams.open(a);
  expect(a.written).toEqual([]);
  state = 'now';
  streams.pushAll();
  expect(a.written).toEqual(['now']);
  streams.endAll();
  expect(a.writableEnded).toBe(true);
  expect(streams.size).toBe(0);
});

test('FetchJWTBundles: a client that does not read is sent no bundle change until it drains, then the newest bundles', async () => {
  const { WorkloadJwtCalls } = await import('../../../../proxy/src/workload-api/jwt-svid-calls.js');
  const listeners: (() => void)[] = [];
  const calls = new WorkloadJwtCalls({
    mint: () => Promise.reject(new Error('not used')),
    bundles: {
      current: new Map(),
      subscribe: (l) => {
        listeners.push(l);
        return () => undefined;
      },
    },
    ownId: () => undefined,
    nowMs: () => 0,
  });
  const stream = new FakeStream();
  stream.accepts = false;
  calls.fetchJwtBundles(stream as never);
  for (let i = 0; i < 500; i++) for (const l of listeners) l();
  expect(stream.written).toHaveLength(1);
  stream.accepts = true;
  stream.emit('drain');
  expect(stream.written).toHaveLength(2);
  calls.close();
  expect(stream.writableEnded).toBe(true);
});
