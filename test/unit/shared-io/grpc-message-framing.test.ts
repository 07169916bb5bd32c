// The gRPC request framing the session guard times and bounds unfinished messages by (audit 55c F1): the bytes of
// the message a client has begun and not finished, and when it began, across any split of its DATA into chunks.
import { expect, test } from 'vitest';
import { GrpcMessageFraming } from '../../../shared-io/grpc-message-framing.js';

const MAX = 1_000;
/** A gRPC message: flag, 32-bit length, body (declared length `declared` when given). */
const msg = (body: number, flag = 0, declared = body) => {
  const b = Buffer.alloc(5 + body, 0x61);
  b[0] = flag;
  b.writeUInt32BE(declared, 1);
  return b;
};

test('a message split across chunks, the prefix itself split: held from its first byte until its last, then nothing', () => {
  const f = new GrpcMessageFraming(MAX);
  const m = msg(300);
  expect([f.heldBytes, f.startedMs]).toEqual([0, undefined]);
  f.write(m.subarray(0, 2), 10);
  expect([f.heldBytes, f.startedMs, f.completed]).toEqual([2, 10, 0]);
  f.write(m.subarray(2, 4), 20);
  f.write(m.subarray(4, 100), 30);
  expect([f.heldBytes, f.startedMs]).toEqual([100, 10]);
  f.write(m.subarray(100), 40);
  expect([f.heldBytes, f.startedMs, f.completed]).toEqual([0, undefined, 1]);
});

test('one byte at a time: the same', () => {
  const f = new GrpcMessageFraming(MAX);
  const m = msg(40);
  for (let i = 0; i < m.length - 1; i++) f.write(m.subarray(i, i + 1), i);
  expect([f.heldBytes, f.startedMs]).toEqual([m.length - 1, 0]);
  f.write(m.subarray(m.length - 1), 99);
  expect([f.heldBytes, f.completed]).toEqual([0, 1]);
});

test('several messages in one chunk, the last begun: only it is held, begun at that chunk', () => {
  const f = new GrpcMessageFraming(MAX);
  f.write(msg(10), 1);
  const next = msg(50);
  f.write(Buffer.concat([msg(20), msg(0), msg(30), next.subarray(0, 7)]), 5);
  expect([f.heldBytes, f.startedMs, f.completed]).toEqual([7, 5, 4]);
  f.write(next.subarray(7), 6);
  expect([f.heldBytes, f.startedMs, f.completed]).toEqual([0, undefined, 5]);
});

test('zero-length messages are whole at their prefix; a prefix alone is held', () => {
  const f = new GrpcMessageFraming(MAX);
  f.write(Buffer.concat([msg(0), msg(0), msg(0)]), 1);
  expect([f.heldBytes, f.startedMs, f.completed]).toEqual([0, undefined, 3]);
  f.write(msg(0).subarray(0, 4), 2);
  expect([f.heldBytes, f.startedMs]).toEqual([4, 2]);
  f.write(msg(0).subarray(4), 3);
  expect([f.heldBytes, f.completed]).toEqual([0, 4]);
});

test('the compressed flag changes nothing in the framing', () => {
  const f = new GrpcMessageFraming(MAX);
  const m = msg(64, 1);
  f.write(m.subarray(0, 30), 1);
  expect([f.heldBytes, f.startedMs]).toEqual([30, 1]);
  f.write(Buffer.concat([m.subarray(30), msg(3, 1)]), 2);
  expect([f.heldBytes, f.completed]).toEqual([0, 2]);
});

test('a message declared over the largest read is held by nobody (refused at its prefix) but still timed', () => {
  const f = new GrpcMessageFraming(MAX);
  const m = msg(600, 0, MAX + 1);
  f.write(m.subarray(0, 3), 1);
  expect(f.heldBytes).toBe(3);
  f.write(m.subarray(3), 2);
  expect([f.heldBytes, f.startedMs, f.completed]).toEqual([0, 1, 0]);
  // A declared 4 GiB - 1 length reads exactly (no 32-bit sign).
  const g = new GrpcMessageFraming(MAX);
  g.write(Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 1, 2]), 7);
  expect([g.heldBytes, g.startedMs]).toEqual([0, 7]);
});
