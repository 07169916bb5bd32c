// The upstream keep-alive pool against real loopback TCP servers: reuse, the connection cap and its queue,
// the idle sweep (injected time), and connections that the server closes or that carry stray bytes.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { ConnectionPool, type PoolOptions, type UpstreamConn, type UpstreamOwner } from '../../../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

interface TestServer {
  readonly port: number;
  /** Server-side sockets, in accept order. */
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A line echo server: answers every chunk with "echo:<chunk>". */
async function echoServer(onConnection?: (s: net.Socket) => void): Promise<TestServer> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(`echo:${d}`));
    onConnection?.(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const t: TestServer = {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  cleanups.push(() => t.close());
  return t;
}

class Owner implements UpstreamOwner {
  data = '';
  gone = 0;
  onUpstreamData(_c: UpstreamConn, chunk: Buffer): void {
    this.data += chunk.toString();
  }
  onUpstreamGone(): void {
    this.gone++;
  }
  onUpstreamDrain(): void {}
}

function makePool(port: number, opts: Partial<PoolOptions> = {}): { pool: ConnectionPool; clock: { now: number }; opened: () => number } {
  const clock = { now: 1_000_000 };
  let opened = 0;
  const pool = new ConnectionPool({
    connect: plainConnector('127.0.0.1', port, 2_000),
    maxConnections: 4,
    maxQueue: 4,
    idleTimeoutMs: 5_000,
    nowMs: () => clock.now,
    timers: realTimers,
    onOpened: () => {
      opened++;
    },
    ...opts,
  });
  cleanups.push(() => pool.close());
  return { pool, clock, opened: () => opened };
}

function acquire(pool: ConnectionPool, owner: UpstreamOwner): Promise<UpstreamConn> {
  return new Promise((resolve, reject) => pool.acquire(owner, (err, conn) => (err || !conn ? reject(err ?? new Error('no conn')) : resolve(conn))));
}

/** One exchange on a leased connection: write, wait for the echo. */
async function exchange(conn: UpstreamConn, owner: Owner, text: string): Promise<void> {
  owner.data = '';
  conn.socket.write(Buffer.from(text));
  await until(`echo of ${text}`, () => owner.data === `echo:${text}`, 3_000, 5);
}

describe('detach (upgraded connections)', () => {
  test('a detached connection leaves the pool: no slot taken, never pooled again, its end is a half-close for its owner', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 1, maxQueue: 1 });
    const ended: UpstreamConn[] = [];
    const a = Object.assign(new Owner(), { onUpstreamEnd: (c: UpstreamConn) => ended.push(c) });
    const c1 = await acquire(pool, a);
    pool.detach(c1);
    expect(pool.stats).toEqual({ open: 0, idle: 0, queued: 0 });
    // The only slot is free again: another request gets a new connection at once.
    const b = new Owner();
    const c2 = await acquire(pool, b);
    expect(c2).not.toBe(c1);
    await exchange(c1, a, 'still mine');
    // The upstream finishes sending: reported as an end, the connection stays writable.
    c1.socket.allowHalfOpen = true;
    srv.sockets[0]!.end();
    await until('the half-close is reported', () => ended.length === 1, 3_000, 5);
    expect(a.gone).toBe(0);
    expect((c1.socket as net.Socket).writable).toBe(true);
    // Released by mistake: destroyed, not pooled.
    pool.release(c1);
    await until('gone', () => a.gone === 0 && c1.socket.destroyed, 3_000, 5);
    pool.release(c2);
    expect(pool.stats).toEqual({ open: 1, idle: 1, queued: 0 });
  });
});

describe('reuse', () => {
  test('a released connection is leased again (most recently used first) and marked reused', async () => {
    const srv = await echoServer();
    const { pool, opened } = makePool(srv.port);
    const a = new Owner();
    const c1 = await acquire(pool, a);
    expect(c1.reused).toBe(false);
    expect(c1.owner).toBe(a);
    await exchange(c1, a, 'one');
    pool.release(c1);
    expect(c1.owner).toBeNull();
    expect(pool.stats).toEqual({ open: 1, idle: 1, queued: 0 });

    const b = new Owner();
    const c2 = await acquire(pool, b);
    expect(c2).toBe(c1);
    expect(c2.reused).toBe(true);
    expect(c2.owner).toBe(b);
    await exchange(c2, b, 'two');
    expect(a.data).toBe('echo:one'); // the previous owner hears nothing more
    expect(srv.sockets.length).toBe(1);
    expect(opened()).toBe(1);
  });

  test('20 sequential exchanges use one connection', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port);
    for (let i = 0; i < 20; i++) {
      const o = new Owner();
      const c = await acquire(pool, o);
      await exchange(c, o, `n${i}`);
      pool.release(c);
    }
    expect(srv.sockets.length).toBe(1);
  });

  test('maxRequests: a connection that carried that many exchanges is closed, and the next exchange (queued too) gets a fresh one', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxRequests: 3, maxConnections: 1 });
    for (let i = 0; i < 7; i++) {
      const o = new Owner();
      const c = await acquire(pool, o);
      await exchange(c, o, `n${i}`);
      // The third exchange's release hands the connection to no one, queued waiters included.
      const waiting = i === 2 ? acquire(pool, new Owner()) : null;
      pool.release(c);
      if (waiting) pool.release(await waiting);
    }
    // 7 exchanges and the extra lease on the third connection's slot: 3 + 3 + 1 exchanges, one connection each 3.
    await until('three server connections', () => srv.sockets.length === 3, 3_000, 5);
    expect(srv.sockets.length).toBe(3);
  });

  test('maxRequests 1: no connection is ever reused', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxRequests: 1 });
    const seen = new Set<UpstreamConn>();
    for (let i = 0; i < 5; i++) {
      const o = new Owner();
      const c = await acquire(pool, o);
      expect(seen.has(c)).toBe(false);
      seen.add(c);
      await exchange(c, o, `n${i}`);
      pool.release(c);
      expect(c.socket.destroyed).toBe(true);
    }
    expect(srv.sockets.length).toBe(5);
  });

  test('a connection released while paused (downstream backpressure) is flowing again for its next owner', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port);
    const a = new Owner();
    const c = await acquire(pool, a);
    await exchange(c, a, 'x');
    c.socket.pause(); // what a session does when its client is slow, possibly right before the exchange ends
    pool.release(c);
    const b = new Owner();
    const again = await acquire(pool, b);
    expect(again).toBe(c);
    await exchange(again, b, 'y');
  });
});

describe('connection cap and queue', () => {
  test('beyond maxConnections requests wait in the queue and get the next released connection', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 2, maxQueue: 2 });
    const owners = [new Owner(), new Owner(), new Owner()];
    const c1 = await acquire(pool, owners[0]!);
    const c2 = await acquire(pool, owners[1]!);
    let third: UpstreamConn | undefined;
    pool.acquire(owners[2]!, (err, conn) => {
      expect(err).toBeNull();
      third = conn;
    });
    expect(pool.stats).toEqual({ open: 2, idle: 0, queued: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBeUndefined();
    expect(srv.sockets.length).toBe(2);

    await exchange(c2, owners[1]!, 'b');
    pool.release(c2);
    expect(third).toBe(c2);
    expect(third!.owner).toBe(owners[2]);
    expect(pool.stats).toEqual({ open: 2, idle: 0, queued: 0 });
    await exchange(third!, owners[2]!, 'c');
    expect(srv.sockets.length).toBe(2);
    pool.release(c1);
    pool.release(third!);
    expect(pool.stats.idle).toBe(2);
  });

  test('a full queue refuses at once, with a stable code (the session matches it to answer 503)', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 1, maxQueue: 1 });
    await acquire(pool, new Owner());
    pool.acquire(new Owner(), () => undefined); // queued
    const err = await new Promise<Error | null>((resolve) => pool.acquire(new Owner(), (e) => resolve(e)));
    expect(isTesseraError(err, 'TESSERA_ERR_UPSTREAM_QUEUE_FULL')).toBe(true);
    expect(pool.stats.queued).toBe(1);
  });

  test('concurrent acquires never dial more than maxConnections', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 3, maxQueue: 100 });
    const leased: UpstreamConn[] = [];
    for (let i = 0; i < 20; i++) pool.acquire(new Owner(), (_e, c) => c && leased.push(c));
    await until('three connections', () => leased.length === 3, 3_000, 5);
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.sockets.length).toBe(3);
    expect(pool.stats).toEqual({ open: 3, idle: 0, queued: 17 });
    // Releasing serves the queue one by one on the same three connections.
    for (let served = 3; served < 20; served++) pool.release(leased[served - 3]!);
    expect(leased.length).toBe(20);
    expect(new Set(leased.map((c) => c.socket)).size).toBe(3);
  });

  test('a discarded connection frees its slot: a queued request gets a fresh dial', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 1, maxQueue: 1 });
    const c1 = await acquire(pool, new Owner());
    const waiting = acquire(pool, new Owner());
    pool.discard(c1);
    const c2 = await waiting;
    expect(c2).not.toBe(c1);
    expect(c1.socket.destroyed).toBe(true);
    await until('second server connection', () => srv.sockets.length === 2, 3_000, 5);
  });

  test('a failed dial reports the error and lets the queue try again', async () => {
    const srv = await echoServer();
    const port = srv.port;
    await srv.close(); // nothing listens there now
    const { pool } = makePool(port, { maxConnections: 1, maxQueue: 2 });
    const errors = await Promise.all([0, 1].map(() => new Promise<Error | null>((resolve) => pool.acquire(new Owner(), (e) => resolve(e)))));
    for (const e of errors) expect(e).toBeInstanceOf(Error);
    expect(pool.stats).toEqual({ open: 0, idle: 0, queued: 0 });
  });
});

describe('withdrawing a wait', () => {
  /** Acquires for a fresh owner and records every callback it gets (a withdrawn one must get none). */
  function waiter(pool: ConnectionPool, name: string, calls: string[]) {
    const owner = new Owner();
    const wait = pool.acquire(owner, (err, conn) => calls.push(`${name}:${err ? 'error' : conn ? 'conn' : 'none'}`));
    return { owner, wait };
  }

  test('withdrawn waiters free their queue slots at once: live requests queue instead of queue_full', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 1, maxQueue: 2 });
    const c1 = await acquire(pool, new Owner());
    const calls: string[] = [];
    const a = waiter(pool, 'a', calls);
    const b = waiter(pool, 'b', calls);
    expect(pool.stats.queued).toBe(2);
    // Both clients left while queued.
    pool.withdraw(a.wait!);
    pool.withdraw(b.wait!);
    expect(pool.stats.queued).toBe(0);
    const c = waiter(pool, 'c', calls);
    const d = waiter(pool, 'd', calls);
    expect(c.wait).not.toBeNull();
    expect(d.wait).not.toBeNull();
    expect(pool.stats.queued).toBe(2);
    expect(calls).toEqual([]); // none refused
    pool.release(c1);
    expect(calls).toEqual(['c:conn']);
    expect(c1.owner).toBe(c.owner);
    pool.release(c1);
    expect(calls).toEqual(['c:conn', 'd:conn']);
    expect(c1.owner).toBe(d.owner);
    pool.release(c1);
    expect(pool.stats).toEqual({ open: 1, idle: 1, queued: 0 });
    expect(calls).toEqual(['c:conn', 'd:conn']); // a and b never
  });

  test('a withdrawn waiter is never handed a connection; the others keep their order', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 1, maxQueue: 4 });
    const c1 = await acquire(pool, new Owner());
    const calls: string[] = [];
    const [w1, w2, w3, w4] = ['1', '2', '3', '4'].map((n) => waiter(pool, n, calls));
    pool.withdraw(w2!.wait!);
    pool.withdraw(w4!.wait!);
    pool.withdraw(w4!.wait!); // twice: still a no-op
    expect(pool.stats.queued).toBe(2);
    pool.release(c1);
    expect(c1.owner).toBe(w1!.owner);
    pool.release(c1);
    expect(c1.owner).toBe(w3!.owner);
    pool.release(c1);
    expect(calls).toEqual(['1:conn', '3:conn']);
    expect(pool.stats).toEqual({ open: 1, idle: 1, queued: 0 });
    // Withdrawing a wait that was already answered changes nothing.
    pool.withdraw(w1!.wait!);
    expect(pool.stats).toEqual({ open: 1, idle: 1, queued: 0 });
    // Closing the pool refuses only live waiters: the withdrawn ones still hear nothing.
    const held = await acquire(pool, new Owner());
    const w5 = waiter(pool, '5', calls);
    const w6 = waiter(pool, '6', calls);
    pool.withdraw(w5.wait!);
    pool.close();
    expect(calls).toEqual(['1:conn', '3:conn', '6:error']);
    expect(w6.wait).not.toBeNull();
    pool.release(held);
  });

  test('a wait withdrawn while its connection is dialed: the new connection goes to the next waiter, or idle', async () => {
    const srv = await echoServer();
    const { pool, opened } = makePool(srv.port, { maxConnections: 1, maxQueue: 2 });
    const calls: string[] = [];
    const a = waiter(pool, 'a', calls); // dials
    const b = waiter(pool, 'b', calls); // queued behind the dial
    expect(a.wait).not.toBeNull();
    pool.withdraw(a.wait!);
    await until('b gets the connection dialed for a', () => calls.length === 1, 3_000, 5);
    expect(calls).toEqual(['b:conn']);
    expect(opened()).toBe(1);
    expect(pool.stats).toEqual({ open: 1, idle: 0, queued: 0 });
    // Alone: a connection dialed for a withdrawn wait is kept idle for the next request.
    const { pool: pool2 } = makePool(srv.port, { maxConnections: 1, maxQueue: 1 });
    const c = waiter(pool2, 'c', calls);
    pool2.withdraw(c.wait!);
    await until('pooled idle', () => pool2.stats.idle === 1, 3_000, 5);
    expect(pool2.stats).toEqual({ open: 1, idle: 1, queued: 0 });
    expect(calls).toEqual(['b:conn']);
    expect(b.wait).not.toBeNull();
  });
});

describe('idle connections', () => {
  test('the sweep closes connections idle longer than idleTimeout, and only those', async () => {
    const srv = await echoServer();
    const { pool, clock } = makePool(srv.port, { idleTimeoutMs: 5_000 });
    const o1 = new Owner();
    const o2 = new Owner();
    const old = await acquire(pool, o1);
    const fresh = await acquire(pool, o2);
    pool.release(old);
    clock.now += 4_000;
    pool.release(fresh);
    pool.sweep();
    expect(pool.stats.idle).toBe(2); // neither is past the limit yet
    clock.now += 1_001;
    pool.sweep();
    expect(pool.stats.idle).toBe(1);
    expect(old.socket.destroyed).toBe(true);
    expect(fresh.socket.destroyed).toBe(false);
    await until('open count to drop', () => pool.stats.open === 1, 3_000, 5);
    await until('server to see the close', () => srv.sockets[0]!.closed, 3_000, 5);
  });

  test('the sweep says whether the pool still holds a connection (the listener stops sweeping once none is left)', async () => {
    const srv = await echoServer();
    const { pool, clock } = makePool(srv.port, { idleTimeoutMs: 5_000 });
    expect(pool.sweep()).toBe(false);
    const leased = await acquire(pool, new Owner());
    expect(pool.sweep()).toBe(true);
    pool.release(leased);
    expect(pool.sweep()).toBe(true); // idle, not yet past the timeout
    clock.now += 5_001;
    // This sweep closes it; the socket's close is what takes it out of the open count.
    pool.sweep();
    await until('open count to drop', () => pool.stats.open === 0, 3_000, 5);
    expect(pool.sweep()).toBe(false);
  });

  test('a connection the server closes while idle leaves the pool; the next acquire dials anew', async () => {
    const srv = await echoServer();
    const { pool, opened } = makePool(srv.port);
    const o = new Owner();
    const c = await acquire(pool, o);
    await exchange(c, o, 'hi');
    pool.release(c);
    srv.sockets[0]!.end(); // keep-alive timeout on the server side
    await until('the idle connection to be dropped', () => pool.stats.open === 0 && pool.stats.idle === 0, 3_000, 5);
    expect(o.gone).toBe(0); // nobody owned it any more
    const o2 = new Owner();
    const c2 = await acquire(pool, o2);
    expect(c2).not.toBe(c);
    await exchange(c2, o2, 'again');
    expect(opened()).toBe(2);
  });

  test('an idle connection that receives unsolicited bytes is dropped, not handed to the next owner', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port);
    const o = new Owner();
    const c = await acquire(pool, o);
    await exchange(c, o, 'hi');
    pool.release(c);
    srv.sockets[0]!.write('HTTP/1.1 200 OK\r\n\r\nstale');
    await until('the connection to be dropped', () => pool.stats.open === 0, 3_000, 5);
    expect(c.socket.destroyed).toBe(true);
    const c2 = await acquire(pool, new Owner());
    expect(c2).not.toBe(c);
  });

  test('the server closing a leased connection tells its owner once', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port);
    const o = new Owner();
    const c = await acquire(pool, o);
    srv.sockets[0]!.destroy();
    await until('onUpstreamGone', () => o.gone > 0, 3_000, 5);
    await new Promise((r) => setTimeout(r, 20));
    expect(o.gone).toBe(1);
    expect(c.gone).toBe(true);
    pool.release(c); // a late release of a dead connection must not put it back
    expect(pool.stats).toEqual({ open: 0, idle: 0, queued: 0 });
  });
});

describe('close', () => {
  test('close destroys idle connections, fails queued waiters and refuses new requests', async () => {
    const srv = await echoServer();
    const { pool } = makePool(srv.port, { maxConnections: 2, maxQueue: 5 });
    const idle = await acquire(pool, new Owner());
    const busy = await acquire(pool, new Owner());
    pool.release(idle);
    // Fill both slots again so the next request queues.
    const idleAgain = await acquire(pool, new Owner());
    pool.release(idleAgain);
    await acquire(pool, new Owner()); // takes the idle one
    const queued = new Promise<Error | null>((resolve) => pool.acquire(new Owner(), (e) => resolve(e)));
    pool.close();
    expect(await queued).toBeInstanceOf(Error);
    const late = await new Promise<Error | null>((resolve) => pool.acquire(new Owner(), (e) => resolve(e)));
    expect(late).toBeInstanceOf(Error);
    pool.release(busy); // released after close: closed, not kept
    expect(busy.socket.destroyed).toBe(true);
    expect(pool.stats.idle).toBe(0);
  });
});
