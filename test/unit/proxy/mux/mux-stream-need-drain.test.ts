// A multiplexed stream tells its writer to wait for 'drain' when its session's TLS socket has backed up, though its
// own window has room and nothing waits in it: writableNeedDrain says so, as a socket's does, and unflushed() reads
// it. Without it, an HTTP/1.1 client the proxy paused for a congested session looked like a slow sender to the body
// pace and was cut 408 request_body_timeout (audit 62e F1).
import { expect, test } from 'vitest';
import { unflushed } from '../../../../common/refusal-reasons.js';
import type { MuxCode } from '../../../../proxy/src/mux/mux-frame.js';
import { MuxStream, type StreamPort } from '../../../../proxy/src/mux/mux-stream.js';

class Port implements StreamPort {
  congested = false;
  readonly draining = false;
  readonly remoteAddress = undefined;
  readonly remotePort = undefined;
  data(_s: MuxStream, _payload: Buffer | null): void {}
  windowUpdate(_s: MuxStream, _increment: number): void {}
  reset(_s: MuxStream, _code: MuxCode): void {}
  forget(): void {}
  queued(_delta: number): void {}
  fault(_code: MuxCode, _reason: string): void {}
}

test('a write into a congested session: false, nothing queued in the stream, and the stream reads as unflushed until the session drains', () => {
  const port = new Port();
  const s = new MuxStream(1, port);
  let drains = 0;
  s.on('drain', () => drains++);
  expect(s.write(Buffer.from('a'))).toBe(true);
  expect(unflushed(s)).toBe(false);
  port.congested = true;
  expect(s.write(Buffer.from('b'))).toBe(false);
  expect(s.writableLength).toBe(0);
  expect(s.writableNeedDrain).toBe(true);
  expect(unflushed(s)).toBe(true);
  port.congested = false;
  s.onSessionDrain();
  expect(drains).toBe(1);
  expect(s.writableNeedDrain).toBe(false);
  expect(unflushed(s)).toBe(false);
});
