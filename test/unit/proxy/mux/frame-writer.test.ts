// The per-turn frame encoder of a mux session: frames of one turn leave as one buffer in order, each turn's bytes
// stay as they were after later turns (a write Node has not finished still points at them), and a turn larger than
// the slab moves whole into a larger one.
import { describe, expect, test } from 'vitest';
import { FrameWriter } from '../../../../proxy/src/mux/frame-writer.js';
import { FrameType, HEADER_BYTES, header, readHeader } from '../../../../proxy/src/mux/mux-frame.js';

function frames(b: Buffer): { type: number; stream: number; length: number; payload: string }[] {
  const out = [];
  for (let at = 0; at < b.length; ) {
    const h = readHeader(b, at);
    const n = h.type === FrameType.Data ? h.length : 0;
    out.push({ type: h.type, stream: h.stream, length: h.length, payload: b.toString('latin1', at + HEADER_BYTES, at + HEADER_BYTES + n) });
    at += HEADER_BYTES + n;
  }
  return out;
}

describe('FrameWriter', () => {
  test('a turn is its frames in order, encoded as header() encodes them', () => {
    const w = new FrameWriter();
    expect(w.take()).toBeNull();
    w.frame(FrameType.Data, 0, 0, 3, 5);
    w.payload(Buffer.from('hello'));
    w.frame(FrameType.WindowUpdate, 0, 0, 3, 65536);
    expect(w.length).toBe(2 * HEADER_BYTES + 5);
    const turn = w.take()!;
    expect(turn.subarray(0, HEADER_BYTES)).toEqual(header(FrameType.Data, 0, 0, 3, 5));
    expect(frames(turn)).toEqual([
      { type: FrameType.Data, stream: 3, length: 5, payload: 'hello' },
      { type: FrameType.WindowUpdate, stream: 3, length: 65536, payload: '' },
    ]);
    expect(w.length).toBe(0);
    expect(w.take()).toBeNull();
  });

  test('earlier turns keep their bytes while later turns fill and outgrow the slab', () => {
    const w = new FrameWriter();
    const taken: { buf: Buffer; copy: Buffer }[] = [];
    for (let i = 0; i < 400; i++) {
      // Sizes from 0 to ~70 KiB: many turns per slab, and some larger than a whole slab.
      const size = i % 50 === 49 ? 70_000 + i : (i * 37) % 900;
      w.frame(FrameType.Data, 0, 0, 2 * i + 1, size);
      w.payload(Buffer.alloc(size, i & 0xff));
      const buf = w.take()!;
      taken.push({ buf, copy: Buffer.from(buf) });
    }
    for (const [i, t] of taken.entries()) {
      expect(t.buf.equals(t.copy), `turn ${i}`).toBe(true);
      expect(frames(t.buf)[0]!.stream).toBe(2 * i + 1);
    }
  });

  test('a turn that outgrows the slab midway keeps what it had written before', () => {
    const w = new FrameWriter();
    w.frame(FrameType.Data, 0, 0, 1, 3);
    w.payload(Buffer.from('abc'));
    w.frame(FrameType.Data, 0, 0, 1, 40_000);
    w.payload(Buffer.alloc(40_000, 0x78));
    const f = frames(w.take()!);
    expect(f.map((x) => x.length)).toEqual([3, 40_000]);
    expect(f[0]!.payload).toBe('abc');
    expect(f[1]!.payload).toBe('x'.repeat(40_000));
  });

  test('release lets the slab go only between turns; turns before and after keep their bytes', () => {
    const w = new FrameWriter();
    w.frame(FrameType.Data, 0, 0, 1, 2);
    w.payload(Buffer.from('ab'));
    w.release(); // a turn in progress keeps its slab and bytes
    const first = w.take()!;
    expect(frames(first)).toEqual([{ type: FrameType.Data, stream: 1, length: 2, payload: 'ab' }]);
    const kept = Buffer.from(first);
    w.release();
    w.frame(FrameType.Data, 0, 0, 3, 2);
    w.payload(Buffer.from('cd'));
    const second = w.take()!;
    expect(frames(second)).toEqual([{ type: FrameType.Data, stream: 3, length: 2, payload: 'cd' }]);
    // A new slab: the earlier turn's bytes are untouched, and the two views do not share memory.
    expect(first.equals(kept)).toBe(true);
    expect(second.buffer).not.toBe(first.buffer);
  });

  test('clear drops the turn', () => {
    const w = new FrameWriter();
    w.frame(FrameType.Ping, 0, 0, 0, 7);
    w.clear();
    expect(w.take()).toBeNull();
    w.frame(FrameType.GoAway, 0, 1, 9, 0);
    expect(frames(w.take()!)).toEqual([{ type: FrameType.GoAway, stream: 9, length: 0, payload: '' }]);
  });
});
