// ConnectionPool.closeDetached on a stream of a real multiplexed session (two MuxSessions on a loopback TCP pair), its
// linger on injected timers: the stream is ended (FIN) at once, waits for its peer's FIN for ORDERLY_LINGER_MS (5 s)
// and only then is reset, which the far side sees as an RST. Driven by test/helpers/fake-time.ts: nothing sleeps.
import { afterEach, describe, expect, test } from 'vitest';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { ConnectionPool, type UpstreamConn, type UpstreamOwner } from '../../../../proxy/src/upstream/connection-pool.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { type SessionPair, sessionPair } from '../../../helpers/mux-sessions.js';
import { until } from '../../../helpers/until.js';

const LINGER_MS = 5_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const owner: UpstreamOwner = { onUpstreamData: () => undefined, onUpstreamGone: () => undefined, onUpstreamDrain: () => undefined, onUpstreamEnd: () => undefined };

/** A pool whose connections are client streams of `pair`, on `time`'s timers. */
function streamPool(pair: SessionPair, time: FakeTime): ConnectionPool {
  const pool = new ConnectionPool({ connect: (done) => done(null, pair.client.open()), maxConnections: 1, maxQueue: 1, idleTimeoutMs: 60_000, nowMs: () => time.nowMs(), timers: time });
  cleanups.push(() => pool.close());
  return pool;
}

function lease(pool: ConnectionPool): Promise<UpstreamConn> {
  return new Promise((resolve, reject) => pool.acquire(owner, (err, conn) => (err || !conn ? reject(err ?? new Error('no connection')) : resolve(conn))));
}

describe('closeDetached on a multiplexed stream', () => {
  test('ends the stream at once, resets it only once the linger has passed on the injected timers', async () => {
    const pair = await sessionPair({ transport: 'tcp' });
    cleanups.push(() => pair.close());
    const time = new FakeTime();
    const pool = streamPool(pair, time);
    const conn = await lease(pool);
    conn.socket.write(Buffer.from('GET /ws HTTP/1.1\r\n\r\n'));
    const far: MuxStream = await pair.nextStream();
    // The far side's app is still sending (an upgraded tunnel half-closed by this side): it does not answer the FIN.
    far.allowHalfOpen = true;
    const farEvents: string[] = [];
    far.on('end', () => farEvents.push('end'));
    far.on('error', (e: Error & { code?: unknown }) => farEvents.push(`error ${String(e.code)}`));
    far.on('close', (hadError: boolean) => farEvents.push(`close ${hadError}`));
    far.resume();
    pool.detach(conn);
    pool.closeDetached(conn);
    // The FIN reaches the far side; its own side stays open (its app has not finished), so the stream lingers.
    await until('the far side read the FIN', () => farEvents.includes('end'), 5_000, 5);
    expect(time.pending).toBe(1);
    time.advance(LINGER_MS - 1);
    expect(conn.socket.destroyed).toBe(false);
    expect(farEvents).toEqual(['end']);
    // The linger passes: the stream is reset, and the far side sees the reset (not a clean close).
    time.advance(1);
    expect(conn.socket.destroyed).toBe(true);
    await until('the far side saw the reset', () => farEvents.some((e) => e.startsWith('close')), 5_000, 5);
    expect(farEvents[farEvents.length - 1]).toBe('close true');
  });
});
