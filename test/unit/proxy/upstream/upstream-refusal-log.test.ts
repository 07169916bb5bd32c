// The calling side's log line for a failed upstream handshake: upstream, expected ID, metric reason and detail, at
// most once a minute per upstream and reason, with the count left out since; other upstreams and reasons apart.
import { expect, test } from 'vitest';
import { UpstreamRefusalLog } from '../../../../proxy/src/upstream/upstream-refusal-log.js';

test('one warn line per upstream and reason a minute, saying how many were left out', () => {
  let now = 1_000;
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = new UpstreamRefusalLog({ warn: (fields: Record<string, unknown>, msg: string) => void lines.push({ fields, msg }) } as never, () => now, 'outbound');
  const err = new Error('upstream 127.0.0.1:9 is not spiffe://a.test/b: expired');
  for (let i = 0; i < 5; i++) log.note('127.0.0.1:9', 'spiffe://a.test/b', 'expired', err);
  log.note('127.0.0.1:9', 'spiffe://a.test/b', 'unknown_ca', err);
  log.note('127.0.0.1:10', 'spiffe://a.test/c', 'expired', err);
  expect(lines).toEqual([
    { fields: { direction: 'outbound', upstream: '127.0.0.1:9', expected: 'spiffe://a.test/b', reason: 'expired', detail: err.message }, msg: 'upstream handshake failed' },
    { fields: expect.objectContaining({ upstream: '127.0.0.1:9', reason: 'unknown_ca' }), msg: 'upstream handshake failed' },
    { fields: expect.objectContaining({ upstream: '127.0.0.1:10', reason: 'expired' }), msg: 'upstream handshake failed' },
  ]);
  now += 59_999;
  log.note('127.0.0.1:9', 'spiffe://a.test/b', 'expired', err);
  expect(lines).toHaveLength(3);
  now += 1;
  log.note('127.0.0.1:9', 'spiffe://a.test/b', 'expired', err);
  expect(lines.at(-1)!.fields).toMatchObject({ upstream: '127.0.0.1:9', reason: 'expired', suppressed: 5 });
});

test('bounded: with more failing upstreams than the table holds, still at most one line per upstream a minute', () => {
  let now = 0;
  const lines: Record<string, unknown>[] = [];
  const log = new UpstreamRefusalLog({ warn: (f: Record<string, unknown>) => void lines.push(f) } as never, () => now, 'edge');
  const upstream = (i: number) => `10.0.${i >> 8}.${i & 255}:443`;
  // 400 upstreams failing again and again within one minute: the first 256 are logged once each, the rest wait.
  for (let round = 0; round < 5; round++) for (let i = 0; i < 400; i++) log.note(upstream(i), 'spiffe://a.test/x', 'timeout', new Error('t'));
  expect(lines).toHaveLength(256);
  expect(new Set(lines.map((l) => l['upstream'])).size).toBe(256);
  // A minute on, the table makes room: the waiting ones are logged, the first line saying how many were left out.
  now += 60_000;
  for (let i = 256; i < 400; i++) log.note(upstream(i), 'spiffe://a.test/x', 'timeout', new Error('t'));
  expect(lines).toHaveLength(400);
  expect(lines[256]).toMatchObject({ upstream: upstream(256), suppressedOtherUpstreams: 5 * 144 });
  expect(lines[257]!['suppressedOtherUpstreams']).toBeUndefined();
});
