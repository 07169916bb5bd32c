// Http1Session and the upstream pool's queue (test/helpers/http1-session-harness.ts: real sockets, real pool):
// requests whose clients left while queued for a connection (closed it, or hit a deadline) withdraw from the
// queue, so they do not hold maxQueue places and turn later live requests away with 503 queue_full.
import { afterEach, describe, expect, test } from 'vitest';
import { type Cleanup, client, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`;

describe('Http1Session: a request that stops waiting for a pooled connection', () => {
  test('clients gone while queued (closed, request_timeout) free their places: a later request waits and is served, not 503', async () => {
    // The app answers "hello" and then the target; the first answer's end waits for finishFirst(): the first
    // request holds the only connection with its response running (so the request timeout that cuts the queued
    // ones does not cut it).
    let finishFirst = () => {};
    const app = await rawApp(cleanups, (s) =>
      s.on('data', (d: Buffer) => {
        const target = d.toString('latin1').split(' ')[1]!;
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${target.length + 5}\r\n\r\nhello`);
        if (target === '/first') finishFirst = () => s.write(target);
        else s.write(target);
      }),
    );
    const p = await http1Harness(app.port, cleanups, { pool: { maxConnections: 1, maxQueue: 2 } });
    const first = await client(p.port, cleanups);
    first.socket.write(GET('/first'));
    await until('the first answer runs', () => first.text().endsWith('hello'), 3_000, 5);

    const gone = await client(p.port, cleanups);
    gone.socket.write(GET('/gone'));
    const late = await client(p.port, cleanups);
    late.socket.write(GET('/late'));
    await until('two requests queued', () => p.pool.stats.queued === 2, 3_000, 5);

    gone.socket.destroy(); // the client left
    await until('the one that left is recorded', () => p.records.length === 1, 3_000, 5);
    p.advance(1_001); // the other's request timeout (the first exchange is within its stream idle timeout)
    await until('the late one is answered 504', () => late.text().startsWith('HTTP/1.1 504 '), 3_000, 5);
    expect(p.records.map((r) => [r.target, r.status, r.responseFlags])).toEqual([
      ['/gone', 499, 'downstream_closed'],
      ['/late', 504, 'request_timeout'],
    ]);

    // Nobody is waiting: a new request takes a place in the queue instead of a 503 queue_full.
    const next = await client(p.port, cleanups);
    next.socket.write(GET('/next'));
    await until('the new request is queued (or refused)', () => p.pool.stats.queued === 1 || next.text() !== '', 3_000, 5);
    expect(next.text()).toBe('');
    expect(p.pool.stats.queued).toBe(1); // only the live request

    // The connection comes free: it goes to the live waiter, not to one that left.
    finishFirst();
    await until('the first answer is whole', () => first.text().endsWith('hello/first'), 3_000, 5);
    await until('the next request is answered on the same connection', () => next.text().endsWith('hello/next'), 3_000, 5);
    expect(next.text()).toMatch(/^HTTP\/1\.1 200 /);
    expect(app.sockets.length).toBe(1);
    expect(p.records.map((r) => [r.target, r.status])).toEqual([
      ['/gone', 499],
      ['/late', 504],
      ['/first', 200],
      ['/next', 200],
    ]);
  });
});
