// The open streams of a method, per SPIFFE ID: a stream leaves when its call ends however it ends, including a
// call the client had cancelled before the handler added it (its 'cancelled' event already gone), which held its
// ID's slot until the connection closed (audit 18 F1).
import { EventEmitter } from 'node:events';
import { expect, test } from 'vitest';
import { OpenStreams, type OpenStream } from '../../../../control-plane/src/api/stream-caller.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';

function stream(id: string, cancelled = false): OpenStream & { call: EventEmitter & { cancelled: boolean; end(): void } } {
  const call = Object.assign(new EventEmitter(), { cancelled, end: () => undefined });
  call.on('error', () => undefined);
  return { peer: { spiffeId: SpiffeId.parse(id), serial: '01', notAfterMs: Number.MAX_SAFE_INTEGER } as OpenStream['peer'], call };
}

test('counted per SPIFFE ID while open; each way a call ends frees its slot', () => {
  const set = new OpenStreams<OpenStream>();
  const a = [stream('spiffe://t.test/a'), stream('spiffe://t.test/a'), stream('spiffe://t.test/a')];
  const b = stream('spiffe://t.test/b');
  for (const s of [...a, b]) set.add(s);
  expect([set.openBy('spiffe://t.test/a'), set.openBy('spiffe://t.test/b'), set.size]).toEqual([3, 1, 4]);
  a[0]!.call.emit('cancelled');
  a[1]!.call.emit('close');
  a[2]!.call.emit('error', new Error('x'));
  expect([set.openBy('spiffe://t.test/a'), set.size]).toEqual([0, 1]);
});

test('a call cancelled before it was added takes no slot', () => {
  const set = new OpenStreams<OpenStream>();
  for (let i = 0; i < 100; i++) set.add(stream('spiffe://t.test/a', true));
  expect(set.openBy('spiffe://t.test/a')).toBe(0);
  expect(set.size).toBe(0);
});
