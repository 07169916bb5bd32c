// The held request body of a forwarded HTTP/2 stream (replay-buffer.ts): chunks held in order up to the limit, let
// go for good once past it or released at the response head, and written again onto a new upstream stream.
import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { ReplayBuffer } from '../../../../proxy/src/h2/replay-buffer.js';

const written = (b: ReplayBuffer): string => {
  const to = new PassThrough();
  b.replayOnto(to);
  to.end();
  return String(to.read() ?? '');
};

describe('ReplayBuffer', () => {
  test('holds the body up to its limit, in order, and replays it', () => {
    const b = new ReplayBuffer(6);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from('def'));
    expect(b.held).toBe(true);
    expect(b.bytes).toBe(6);
    expect(written(b)).toBe('abcdef');
  });

  test('a body past the limit is let go for good', () => {
    const b = new ReplayBuffer(4);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from('de'));
    expect(b.held).toBe(false);
    expect(b.bytes).toBe(5);
    b.push(Buffer.from('f'));
    expect(b.bytes).toBe(5);
    expect(written(b)).toBe('');
  });

  test('released at the response head: nothing more is held', () => {
    const b = new ReplayBuffer(100);
    b.push(Buffer.from('abc'));
    b.release();
    b.push(Buffer.from('d'));
    expect(b.held).toBe(false);
    expect(b.bytes).toBe(3);
    expect(written(b)).toBe('');
  });
});
