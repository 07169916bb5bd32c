// The control plane's TLS front of grpc-js, on 127.0.0.1 port 0: it serves its SVID over h2 only, captures the
// caller's chain per connection, cuts a handshake or a first call that does not come in time (reported by reason),
// refuses TLS 1.2 renegotiation,
// hands new handshakes a new identity while open connections keep theirs, and refuses a bad or taken address.
// stop(graceMs) lets calls in progress be answered before it closes the connections.
import { X509Certificate } from 'node:crypto';
import * as http2 from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { SIGN_SVID_PATH } from '../../../../common/contract/identity-v1.js';
import { isTesseraError } from '../../../../common/errors.js';
import { GrpcServer } from '../../../../control-plane/src/api/grpc-server.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { enroll, watch } from '../../../helpers/api-client.js';
import { CONTROL_PLANE_ID } from '../../../helpers/control-plane.js';
import { apiPerFile, type RunningApi, startTestApi } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';
import { until } from '../../../helpers/until.js';

/** The leaf the server presents to a fresh TLS connection offering h2. */
function servedLeaf(api: RunningApi): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: api.server.port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(s.getPeerCertificate().raw));
      s.destroy();
    });
    s.on('error', reject);
  });
}

/** Resolves when the other side closed the socket (what it sent is read and dropped, so the end is seen). */
const closedBy = (s: Socket) => {
  s.resume();
  return new Promise<void>((r) => s.once('close', () => r()));
};

describe('GrpcServer', () => {
  const failures: string[] = [];
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const rejected: string[] = [];
  const t = apiPerFile(time, { handshakeTimeoutMs: 300, headersTimeoutMs: 300, onTlsFailure: (r) => failures.push(r), onRejected: (r) => rejected.push(r) });

  test('it listens on the bound port and presents the control plane SVID', async () => {
    expect(t.api.server.address).toBe(`127.0.0.1:${t.api.server.port}`);
    expect(t.api.server.port).toBeGreaterThan(0);
    const leaf = await servedLeaf(t.api);
    expect(leaf.subjectAltName).toBe(`URI:${CONTROL_PLANE_ID}`);
    expect(leaf.checkIssued(t.api.ca.current().signer.intermediate)).toBe(true);
  });

  test('the chain a caller presents is what handlers see for its calls (renewal and Watch attest with it)', async () => {
    const { svid, answer } = await enroll(t.api, time.nowMs());
    const w = watch(t.api, svid);
    await until('snapshot for the attested caller', () => w.snapshots.length === 1);
    // The stream was admitted on the chain, so it belongs to this serial: banning that serial ends it.
    await t.api.revocations.ban({ kind: 'serial', value: answer.res!.serial, reason: 'test', createdBy: 'test' });
    await until('stream ended by the serial ban', () => w.ended() !== undefined);
    expect(w.ended()?.tesseraCode).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
  });

  test('a TLS client that does not negotiate h2 is cut and reported as alpn', async () => {
    failures.length = 0;
    const s = tlsConnect({ host: '127.0.0.1', port: t.api.server.port, rejectUnauthorized: false });
    s.on('error', () => {});
    await closedBy(s);
    expect(failures).toEqual(['alpn']);
  });

  test('a connection that never completes its handshake is cut at the handshake timeout', async () => {
    failures.length = 0;
    const s = netConnect(t.api.server.port, '127.0.0.1');
    s.on('error', () => {});
    const started = Date.now();
    await closedBy(s);
    expect(Date.now() - started).toBeLessThan(5_000);
    await until('timeout reported', () => failures.length > 0);
    expect(failures).toEqual(['timeout']);
  });

  test('a connection that completes TLS but makes no call is cut at the headers deadline', async () => {
    failures.length = 0;
    const s = tlsConnect({ host: '127.0.0.1', port: t.api.server.port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    await closedBy(s);
    expect(failures).toEqual(['headers_timeout']);
  });

  // Audit 61b F4: grpc-js runs interceptors only for methods it serves, and the first-call deadline was cleared by
  // one: thousands of complete calls to unknown methods were answered UNIMPLEMENTED, uncounted, and the connection
  // was cut as a headers_timeout.
  test('calls to unknown methods are counted unknown_method; they are calls, so the connection is not cut at the headers deadline', async () => {
    failures.length = 0;
    rejected.length = 0;
    const session = http2.connect(`https://127.0.0.1:${t.api.server.port}`, { rejectUnauthorized: false });
    session.on('error', () => {});
    try {
      const call = (path: string) =>
        new Promise<string | undefined>((resolve) => {
          const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
          req.on('error', () => resolve(undefined));
          let status: string | undefined;
          req.on('response', (h) => {
            status ??= h['grpc-status'] as string | undefined;
          });
          req.on('trailers', (h) => {
            status ??= h['grpc-status'] as string | undefined;
          });
          req.on('close', () => resolve(status));
          req.resume();
          req.end(Buffer.alloc(5));
        });
      expect(await call('/tessera.identity.v1.Identity/NoSuchMethod')).toBe(String(grpc.status.UNIMPLEMENTED));
      expect(await call('/no.Such/Thing')).toBe(String(grpc.status.UNIMPLEMENTED));
      expect(rejected).toEqual(['unknown_method', 'unknown_method']);
      // Past the headers deadline (300 ms) the connection is still open.
      await new Promise((r) => setTimeout(r, 600));
      expect(session.closed || session.destroyed).toBe(false);
      expect(failures).toEqual([]);
      // A served method is not counted.
      await call(SIGN_SVID_PATH);
      expect(rejected).toEqual(['unknown_method', 'unknown_method']);
    } finally {
      session.destroy();
    }
  });

  test('a TLS 1.2 client that renegotiates is cut and reported as protocol (its chain was read once, at accept)', async () => {
    failures.length = 0;
    const s = tlsConnect({ host: '127.0.0.1', port: t.api.server.port, ALPNProtocols: ['h2'], maxVersion: 'TLSv1.2', rejectUnauthorized: false });
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    s.resume(); // the renegotiation and the close travel through reads
    const renegotiated = await new Promise<boolean>((r) => {
      s.renegotiate({ rejectUnauthorized: false }, (err) => r(!err));
      s.once('close', () => r(false));
    });
    expect(renegotiated).toBe(false);
    await until('renegotiation reported', () => failures.length > 0);
    expect(failures).toEqual(['protocol']);
  });

  test('a new identity is served to new handshakes; an open stream keeps going', async () => {
    // A CA of its own: the own SVID moves to the new authority when the retired one is removed (self-signer.ts),
    // which the live SVIDs the other tests hold of the old one would prevent.
    const tmp = await makeTempDir();
    const api = await startTestApi(tmp.dir, time, { handshakeTimeoutMs: 300, headersTimeoutMs: 300 });
    try {
      await api.ca.prepare();
      await api.ca.activate();
      const { svid } = await enroll(api, time.nowMs(), 'spiffe://example.org/ns/default/sa/long');
      const w = watch(api, svid);
      await until('open', () => w.snapshots.length === 1);
      const before = await servedLeaf(api);
      expect(before.checkIssued(api.ca.current().retiredSigners[0]!.intermediate)).toBe(true);
      expect(await api.ca.retire()).toHaveLength(1);
      await api.served.refresh(true, (identity) => api.server.updateIdentity(identity));
      const after = await servedLeaf(api);
      expect(after.serialNumber).not.toBe(before.serialNumber);
      expect(after.checkIssued(api.ca.current().signer.intermediate)).toBe(true);
      await api.hub.publish();
      await until('the open stream gets the one-root bundle', () => w.snapshots.length === 2);
      expect(w.ended()).toBeUndefined();
      w.cancel();
    } finally {
      await api.close();
      await tmp.cleanup();
    }
  });

  // An outside audit: SIGTERM during issuance cut every call in progress within 10 ms (grpc-js's tryShutdown called
  // back at once for connections handed in by the injector), after their SVIDs were signed and tokens spent.
  test('stop(graceMs) answers the calls in progress before it closes their connections; new calls are refused', async () => {
    const s = new GrpcServer({ listen: '127.0.0.1:0', identity: t.api.served.credentials(), handshakeTimeoutMs: 5_000, headersTimeoutMs: 5_000, maxConnections: 16, maxReceiveBytes: 1024, timers: realTimers, nowMs: systemClock.nowMs });
    const raw = (b: Buffer) => b;
    const slow = { path: '/test.Slow/Call', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
    let started = 0;
    const handler = (_call: unknown, done: (e: null, b: Buffer) => void) => {
      started++;
      setTimeout(() => done(null, Buffer.from('answered')), 300);
    };
    s.addService({ Call: slow }, { Call: handler });
    await s.start();
    const creds = grpc.credentials.createSsl(Buffer.from(t.api.bundlePem()), null, null, { checkServerIdentity: () => undefined });
    const clients = Array.from({ length: 3 }, () => new grpc.Client(`127.0.0.1:${s.port}`, creds));
    const call = (c: grpc.Client) =>
      new Promise<string>((resolve) => c.makeUnaryRequest(slow.path, raw, raw, Buffer.from('x'), { deadline: Date.now() + 10_000 }, (e, b) => resolve(e ? `error ${e.code}` : String(b))));
    const answers = clients.flatMap((c) => [call(c), call(c)]);
    await until('every call started', () => started === 6);
    const stopped = s.stop(5_000);
    expect(await Promise.all(answers)).toEqual(Array(6).fill('answered'));
    await stopped;
    expect(s.connections).toBe(0);
    expect(await call(clients[0]!)).toMatch(/^error /);
    for (const c of clients) c.close();
  });

  // Audit 60c F2: a frozen proxy (SIGSTOP: its kernel still answers TCP) kept its connection, its Register stream
  // and its service registration for as long as its SVID lasted. Its connection is closed once a PING goes unanswered.
  test('a connection that does not answer the keepalive PING is closed; one that answers stays', async () => {
    const opts = { identity: t.api.served.credentials(), handshakeTimeoutMs: 5_000, headersTimeoutMs: 20_000, maxConnections: 8, maxReceiveBytes: 1024, timers: realTimers, nowMs: systemClock.nowMs };
    const frozenAfter = async (keepalive: { timeMs: number; timeoutMs: number } | undefined, waitMs: number) => {
      const server = new GrpcServer({ ...opts, listen: '127.0.0.1:0', ...(keepalive ? { keepalive } : {}) });
      await server.start();
      try {
        // Answers PINGs (node:http2 does, in its event loop), makes no call.
        const live = http2.connect(`https://127.0.0.1:${server.port}`, { rejectUnauthorized: false });
        live.on('error', () => undefined);
        // The preface and an empty SETTINGS, then nothing is read again: a process that stopped.
        const frozen = tlsConnect({ host: '127.0.0.1', port: server.port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
        frozen.on('error', () => undefined);
        await new Promise<void>((r) => frozen.once('secureConnect', () => r()));
        frozen.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
        frozen.pause();
        let frozenClosed = false;
        frozen.once('close', () => {
          frozenClosed = true;
        });
        await new Promise((r) => setTimeout(r, waitMs));
        // Now read (the end comes through reads), briefly: a closed connection shows its end at once.
        frozen.resume();
        await new Promise((r) => setTimeout(r, 300));
        const result = { frozenClosed, liveClosed: live.closed || live.destroyed };
        live.destroy();
        frozen.destroy();
        return result;
      } finally {
        await server.stop(0);
      }
    };
    expect(await frozenAfter({ timeMs: 200, timeoutMs: 300 }, 1_500)).toEqual({ frozenClosed: true, liveClosed: false });
    // The default (SERVER_KEEPALIVE, 20 s) has not come yet: the same frozen client is still connected.
    expect(await frozenAfter(undefined, 1_500)).toEqual({ frozenClosed: false, liveClosed: false });
  });

  test('a bad listen address and a taken port are refused with TESSERA_ERR_CP_LISTEN_FAILED', async () => {
    const opts = { identity: t.api.served.credentials(), handshakeTimeoutMs: 1_000, headersTimeoutMs: 1_000, maxConnections: 1, maxReceiveBytes: 1024, timers: realTimers, nowMs: systemClock.nowMs };
    for (const listen of ['not an address', `127.0.0.1:${t.api.server.port}`]) {
      const s = new GrpcServer({ ...opts, listen });
      const code = await s.start().then(() => 'started', (e: unknown) => (isTesseraError(e) ? e.code : String(e)));
      expect(code).toBe('TESSERA_ERR_CP_LISTEN_FAILED');
    }
  });
});

// Audit 60f F2: node:tls's own cap refused newcomers silently, and 400 idle TLS connections (or bare TCP ones, for the
// handshake timeout) kept every caller out. At the cap a connection that has made no call is closed to make room,
// counted; one with a call in progress (a proxy's Watch) never is.
describe('GrpcServer at its connection cap', () => {
  const failures: string[] = [];
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time, { maxConnections: 3, headersTimeoutMs: 20_000, onTlsFailure: (r) => failures.push(r) });
  const idleConnection = async () => {
    const s = tlsConnect({ host: '127.0.0.1', port: t.api.server.port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    s.resume();
    // A TLS 1.3 client finishes before the server has read its Finished: wait for the server's first bytes.
    await new Promise<void>((r) => s.once('data', () => r()));
    let closed = false;
    s.once('close', () => {
      closed = true;
    });
    return { closed: () => closed, destroy: () => s.destroy() };
  };

  /** Two Watch streams (two connections with a call in progress), once nothing else is connected. */
  const twoWatches = async () => {
    await until('the last test\'s connections closed', () => t.api.server.connections === 0);
    const { svid } = await enroll(t.api, time.nowMs());
    const w1 = watch(t.api, svid);
    const w2 = watch(t.api, svid);
    await until('both Watch streams serve', () => w1.snapshots.length === 1 && w2.snapshots.length === 1);
    await until('the enrolment\'s connection closed', () => t.api.server.connections === 2);
    return [w1, w2] as const;
  };

  test('idle connections make room for callers, oldest first; calls in progress are never closed; past that, newcomers are refused and counted', async () => {
    const { svid } = await enroll(t.api, time.nowMs());
    const w1 = watch(t.api, svid);
    const w2 = watch(t.api, svid);
    await until('both Watch streams serve', () => w1.snapshots.length === 1 && w2.snapshots.length === 1);
    const a = await idleConnection();
    const b = await idleConnection();
    await until('the older idle one made room for the newer', () => a.closed());
    expect(b.closed()).toBe(false);
    expect(failures).toEqual(['max_connections']);
    // A caller gets in: the last idle connection makes room.
    await enroll(t.api, time.nowMs());
    await until('the other idle one made room', () => b.closed());
    // Three calls in progress: a newcomer is refused, the calls go on.
    await until('the caller\'s connection closed', () => t.api.server.connections === 2);
    const w3 = watch(t.api, svid);
    await until('a third Watch serves', () => w3.snapshots.length === 1);
    failures.length = 0;
    const refused = tlsConnect({ host: '127.0.0.1', port: t.api.server.port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
    refused.on('error', () => {});
    await closedBy(refused);
    // Counted once: not again as a failed handshake (audit 60g F3).
    await new Promise((r) => setTimeout(r, 100));
    expect(failures).toEqual(['max_connections']);
    expect([w1.ended(), w2.ended(), w3.ended()]).toEqual([undefined, undefined, undefined]);
    for (const w of [w1, w2, w3]) w.cancel();
  });

  test('a connection still in its TLS handshake makes room first, counted once (max_connections, not also protocol)', async () => {
    const [w1, w2] = await twoWatches();
    // A TCP connection that never sends its ClientHello.
    const silent = netConnect(t.api.server.port, '127.0.0.1');
    silent.on('error', () => {});
    await new Promise<void>((r) => silent.once('connect', () => r()));
    await new Promise((r) => setTimeout(r, 100));
    failures.length = 0;
    const silentClosed = closedBy(silent);
    const newcomer = await idleConnection();
    await silentClosed;
    await new Promise((r) => setTimeout(r, 200));
    expect(failures).toEqual(['max_connections']);
    expect(newcomer.closed()).toBe(false);
    newcomer.destroy();
    for (const w of [w1, w2]) w.cancel();
  });

  // Audit 60g F1: one call made a connection busy for good, so it kept its place however long it then sat idle.
  test('a connection whose calls have ended is idle again: it makes room for a newcomer', async () => {
    const [w1, w2] = await twoWatches();
    // One call (an empty SignSvid: refused at once), then the connection stays open, quiet.
    const caller = http2.connect(`https://127.0.0.1:${t.api.server.port}`, { rejectUnauthorized: false });
    caller.on('error', () => undefined);
    let callerClosed = false;
    caller.once('close', () => {
      callerClosed = true;
    });
    await new Promise<void>((r) => {
      const call = caller.request({ ':method': 'POST', ':path': SIGN_SVID_PATH, 'content-type': 'application/grpc', te: 'trailers' });
      call.on('error', () => undefined);
      call.resume();
      call.once('close', () => r());
      call.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    failures.length = 0;
    const newcomer = await idleConnection();
    await until('the caller\'s connection made room', () => callerClosed);
    expect(newcomer.closed()).toBe(false);
    expect(failures).toEqual(['max_connections']);
    newcomer.destroy();
    for (const w of [w1, w2]) w.cancel();
  });
});


// Audits 60b F1 / 60f F1: over TLS, node:http2 misses a client's reset that fails one of its writes (here its SETTINGS,
// the client gone right after the handshake): the session, and the socket, stayed until the first-call deadline.
describe('GrpcServer and clients that reset right after the handshake', () => {
  const t = apiPerFile(new FakeTime(Math.floor(Date.now() / 1000) * 1000), { headersTimeoutMs: 20_000 });

  test('their sockets close at the next probe of the sessions (every 2 s), long before the first-call deadline', async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((done) => {
        const tcp = netConnect(t.api.server.port, '127.0.0.1', () => {
          const s = tlsConnect({ socket: tcp, ALPNProtocols: ['h2'], rejectUnauthorized: false });
          s.on('error', () => {});
          // A TCP reset as the server hands the connection to its HTTP/2 session, which writes its SETTINGS then.
          s.once('secureConnect', () =>
            setImmediate(() => {
              tcp.resetAndDestroy();
              done();
            }),
          );
        });
        tcp.on('error', () => done());
      });
    }
    await until('every such socket closed', () => t.api.server.connections === 0, 5_000, 50);
  });
});
