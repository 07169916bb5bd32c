// Workload API server on a real Unix socket, driven by a plain proto-loader client (no Tessera client code):
// header enforcement, complete-state streams pushed on rotation, Unimplemented JWT calls, malformed and oversized
// requests (hand-made bytes from a raw grpc-js client), and a socket that an app running as another uid can use
// (SPIFFE convention), also through a read-only mount of its directory (a pod's).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WorkloadIdentity, WorkloadIdentityFeed } from '../../../../proxy/src/workload-api/workload-api-messages.js';
import { WorkloadApiServer } from '../../../../proxy/src/workload-api/workload-api-server.js';
import { REPO_ROOT, makeTempDir, run } from '../../../helpers/run.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';
import { systemClock } from '../../../../common/clock.js';
import { realTimers } from '../../../../shared-io/timers.js';

const ID = 'spiffe://example.org/ns/default/sa/api';

class MemoryFeed implements WorkloadIdentityFeed {
  value: WorkloadIdentity | undefined;
  readonly listeners = new Set<() => void>();
  current() {
    return this.value;
  }
  subscribe(l: () => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(v: WorkloadIdentity) {
    this.value = v;
    for (const l of this.listeners) l();
  }
}

function identityOf(svid: MintedSvid, ca: TestCa, extra: Record<string, TestCa> = {}): WorkloadIdentity {
  const bundles = new Map<string, Uint8Array[]>([[ca.trustDomain, [ca.root.cert.raw]]]);
  for (const [td, other] of Object.entries(extra)) bundles.set(td, [other.root.cert.raw]);
  return {
    spiffeId: ID,
    trustDomain: ca.trustDomain,
    chainDer: svid.chain.map((c) => c.raw),
    keyPkcs8Der: svid.key.privateKey.export({ type: 'pkcs8', format: 'der' }),
    bundles,
  };
}

// A generic client: nothing but the published proto and grpc-js.
function genericClient(socket: string): grpc.Client & Record<string, (...a: unknown[]) => unknown> {
  const def = protoLoader.loadSync('spiffe/workload/workload.proto', { includeDirs: [join(REPO_ROOT, 'proto')], keepCase: true, defaults: true });
  const Ctor = (grpc.loadPackageDefinition(def) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI;
  return new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as never;
}
const header = () => {
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  return md;
};

/** Collects stream messages and the final status. */
function collect(stream: grpc.ClientReadableStream<Record<string, unknown>>) {
  const messages: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let status: grpc.StatusObject | undefined;
  stream.on('data', (m) => {
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  stream.on('error', () => {});
  stream.on('status', (s) => {
    status = s;
    for (const w of waiters.splice(0)) w();
  });
  const until = async (pred: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error('timed out waiting on the stream');
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { messages, until, status: () => status };
}

/** Runs `node args…` as `uid` (gid the same), from the repository so its node_modules resolve. */
function asUid(uid: number, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [...args], { cwd: REPO_ROOT, uid, gid: uid, timeout: 20_000, env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A separate process as another uid: plain grpc-js + the published proto, FetchX509SVID, first message. */
async function fetchSvidAs(uid: number, socketPath: string): Promise<unknown> {
  const script = `
    const grpc = require('@grpc/grpc-js');
    const loader = require('@grpc/proto-loader');
    const def = loader.loadSync('spiffe/workload/workload.proto', { includeDirs: ['proto'], keepCase: true });
    const Api = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
    const client = new Api('unix://' + process.argv[1], grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('workload.spiffe.io', 'true');
    const s = client.FetchX509SVID({}, md, { deadline: Date.now() + 10000 });
    const out = (o) => { console.log(JSON.stringify({ ...o, uid: process.getuid() })); process.exit(0); };
    s.on('data', (m) => out({ ok: true, spiffeId: m.svids[0].spiffe_id }));
    s.on('error', (e) => out({ ok: false, code: e.code, details: e.details }));`;
  const r = await asUid(uid, ['-e', script, socketPath]);
  if (r.code !== 0) throw new Error(`client as uid ${uid} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}

describe('SPIFFE Workload API server', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let ca: TestCa;
  let feed: MemoryFeed;
  let server: WorkloadApiServer | undefined;
  let client: ReturnType<typeof genericClient> | undefined;
  const socket = () => join(tmp.dir, 'workload.sock');

  beforeEach(async () => {
    tmp = await makeTempDir();
    ca = await TestCa.create();
    feed = new MemoryFeed();
  });
  afterEach(async () => {
    client?.close();
    await server?.close();
    server = client = undefined;
    await tmp.cleanup();
  });

  test('streams the complete SVID state and pushes a new message on every rotation', async () => {
    const first = await ca.mintSvid(ID);
    feed.set(identityOf(first, ca));
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed });
    client = genericClient(socket());
    const s = collect(client.FetchX509SVID({}, header()) as never);
    await s.until(() => s.messages.length === 1);
    const svid = (s.messages[0]!.svids as Record<string, Buffer>[])[0]!;
    expect(svid.spiffe_id).toBe(ID);
    expect(new X509Certificate(svid.x509_svid!).serialNumber).toBe(first.leaf.serialNumber);
    const key = createPrivateKey({ key: svid.x509_svid_key!, format: 'der', type: 'pkcs8' });
    expect(key.export({ type: 'pkcs8', format: 'der' }).equals(first.key.privateKey.export({ type: 'pkcs8', format: 'der' }))).toBe(true);
    expect(new X509Certificate(svid.bundle!).fingerprint256).toBe(ca.root.cert.fingerprint256);

    const fed = await TestCa.create({ trustDomain: 'partner.org' });
    const second = await ca.mintSvid(ID);
    feed.set(identityOf(second, ca, { 'partner.org': fed }));
    await s.until(() => s.messages.length === 2);
    const svid2 = (s.messages[1]!.svids as Record<string, Buffer>[])[0]!;
    expect(new X509Certificate(svid2.x509_svid!).serialNumber).toBe(second.leaf.serialNumber);
    expect(Object.keys(s.messages[1]!.federated_bundles as object)).toEqual(['spiffe://partner.org']);
    expect(server.openStreams).toBe(1);
  });

  test('streams all bundles keyed by trust-domain ID', async () => {
    const fed = await TestCa.create({ trustDomain: 'partner.org' });
    feed.set(identityOf(await ca.mintSvid(ID), ca, { 'partner.org': fed }));
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed });
    client = genericClient(socket());
    const s = collect(client.FetchX509Bundles({}, header()) as never);
    await s.until(() => s.messages.length === 1);
    const bundles = s.messages[0]!.bundles as Record<string, Buffer>;
    expect(Object.keys(bundles).sort()).toEqual(['spiffe://example.org', 'spiffe://partner.org']);
    expect(new X509Certificate(bundles['spiffe://partner.org']!).fingerprint256).toBe(fed.root.cert.fingerprint256);
  });

  test('refuses calls without the security header with InvalidArgument, JWT calls with Unimplemented', async () => {
    feed.set(identityOf(await ca.mintSvid(ID), ca));
    const events: string[] = [];
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed, onEvent: (e) => events.push(`${e.method}:${e.outcome}`) });
    client = genericClient(socket());
    const noHeader = collect(client.FetchX509SVID({}, new grpc.Metadata()) as never);
    await noHeader.until(() => noHeader.status() !== undefined);
    expect(noHeader.status()!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noHeader.messages).toHaveLength(0);

    const unary = (method: string, md: grpc.Metadata) =>
      new Promise<grpc.ServiceError>((ok) => client![method]!({ audience: ['x'] }, md, (err: grpc.ServiceError) => ok(err)));
    expect((await unary('FetchJWTSVID', header())).code).toBe(grpc.status.UNIMPLEMENTED);
    expect((await unary('ValidateJWTSVID', header())).code).toBe(grpc.status.UNIMPLEMENTED);
    expect((await unary('FetchJWTSVID', new grpc.Metadata())).code).toBe(grpc.status.INVALID_ARGUMENT);
    const jwtBundles = collect(client.FetchJWTBundles({}, header()) as never);
    await jwtBundles.until(() => jwtBundles.status() !== undefined);
    expect(jwtBundles.status()!.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(events).toContain('FetchX509SVID:invalid_argument');
  });

  // Audit 27: a request that did not decode got grpc-js's INTERNAL ("Failed to parse server request" style), and a
  // string that is not UTF-8 was read with U+FFFD in its place; the spec and go-spiffe answer InvalidArgument.
  test('a malformed request gets InvalidArgument (PROTO_MALFORMED), is counted, and the server goes on answering', async () => {
    feed.set(identityOf(await ca.mintSvid(ID), ca));
    const events: string[] = [];
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed, onEvent: (e) => events.push(`${e.method}:${e.outcome}`) });
    const raw = new grpc.Client(`unix://${socket()}`, grpc.credentials.createInsecure());
    const bytes = (b: Buffer) => b;
    const unary = (method: string, body: Buffer) =>
      new Promise<grpc.ServiceError | null>((ok) => raw.makeUnaryRequest(`/SpiffeWorkloadAPI/${method}`, bytes, bytes, body, header(), { deadline: Date.now() + 5_000 }, (e) => ok(e)));
    const stream = async (method: string, body: Buffer) => {
      const s = collect(raw.makeServerStreamRequest(`/SpiffeWorkloadAPI/${method}`, bytes, bytes, body, header(), { deadline: Date.now() + 5_000 }) as never);
      await s.until(() => s.status() !== undefined || s.messages.length > 0);
      return s;
    };
    try {
      const malformed: [string, Buffer, 'unary' | 'stream'][] = [
        ['FetchX509SVID', Buffer.from([0x08, 0xff]), 'stream'], // an (unknown) varint cut short
        ['FetchX509Bundles', Buffer.from([0x0b]), 'stream'], // a group
        ['FetchJWTSVID', Buffer.from([0x0a, 0x05, 0x61]), 'unary'], // audience declares 5 bytes, 1 follows
        ['FetchJWTSVID', Buffer.from([0x0a, 0x02, 0x61, 0xff]), 'unary'], // audience "a\xff": not UTF-8
        ['ValidateJWTSVID', Buffer.from([0x12, 0x03, 0xed, 0xa0, 0x80]), 'unary'], // svid: a UTF-16 surrogate
        ['FetchJWTBundles', Buffer.from([0x00, 0x00]), 'stream'], // field number 0
      ];
      for (const [method, body, kind] of malformed) {
        const status = kind === 'unary' ? await unary(method, body) : (await stream(method, body)).status();
        expect(status?.code, `${method} ${body.toString('hex')}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(status?.details).toMatch(new RegExp(`^TESSERA_ERR_PROTO_MALFORMED: ${method}: the request is not a well-formed message`));
        expect(status?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_PROTO_MALFORMED']);
      }
      expect(events.filter((e) => e.endsWith(':malformed')).sort()).toEqual(
        ['FetchJWTBundles', 'FetchJWTSVID', 'FetchJWTSVID', 'FetchX509Bundles', 'FetchX509SVID', 'ValidateJWTSVID'].map((m) => `${m}:malformed`),
      );
      // bytes are free-form: the same non-UTF-8 bytes in an unknown field are no fault (the call is just unimplemented).
      expect((await unary('FetchJWTSVID', Buffer.from([0x1a, 0x01, 0xff])))?.code).toBe(grpc.status.UNIMPLEMENTED);
      // Over the 20 KiB request bound: RESOURCE_EXHAUSTED with its own code, as the control plane answers one over its cap.
      const large = await unary('FetchJWTSVID', Buffer.concat([Buffer.from([0x0a, 0x80, 0xb0, 0x01]), Buffer.alloc(22_528, 0x61)]));
      expect(large?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(large?.details).toMatch(/^TESSERA_ERR_WORKLOAD_API_REQUEST_TOO_LARGE: FetchJWTSVID: the request is larger than 20480 bytes/);
      expect(large?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_WORKLOAD_API_REQUEST_TOO_LARGE']);
      expect(events).toContain('FetchJWTSVID:too_large');
      // The same connection, and a new client, still get their SVIDs.
      const again = await stream('FetchX509SVID', Buffer.alloc(0));
      expect(again.messages).toHaveLength(1);
      client = genericClient(socket());
      const s = collect(client.FetchX509SVID({}, header()) as never);
      await s.until(() => s.messages.length === 1);
      expect(events.at(-1)).toBe('FetchX509SVID:ok');
    } finally {
      raw.close();
    }
  });

  // Requests grpc-js itself will not read got its own answers (INTERNAL, UNIMPLEMENTED), uncounted: a compressed
  // message that does not inflate, two messages on a single-request method, none before the half-close.
  test('a request grpc-js will not read gets InvalidArgument (PROTO_MALFORMED) too, counted', async () => {
    feed.set(identityOf(await ca.mintSvid(ID), ca));
    const events: string[] = [];
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed, onEvent: (e) => events.push(`${e.method}:${e.outcome}`) });
    const session = http2.connect('http://localhost', { createConnection: () => netConnect(socket()) });
    session.on('error', () => undefined);
    const frame = (compressed: boolean, body: Buffer) => Buffer.concat([Buffer.from([compressed ? 1 : 0]), Buffer.from([0, 0, 0, body.length]), body]);
    const call = (method: string, frames: Buffer[], extra: Record<string, string> = {}) =>
      new Promise<{ status: string | undefined; message: string | undefined; code: string | undefined }>((ok) => {
        const req = session.request({ ':method': 'POST', ':path': `/SpiffeWorkloadAPI/${method}`, 'content-type': 'application/grpc', te: 'trailers', 'workload.spiffe.io': 'true', ...extra });
        const seen: http2.IncomingHttpHeaders = {};
        req.on('response', (h) => Object.assign(seen, h));
        req.on('trailers', (h) => Object.assign(seen, h));
        req.on('error', () => undefined);
        req.resume();
        req.on('close', () => ok({ status: seen['grpc-status'] as string | undefined, message: seen['grpc-message'] as string | undefined, code: seen['tessera-error-code'] as string | undefined }));
        for (const f of frames) req.write(f);
        req.end();
      });
    try {
      const audience = Buffer.from([0x0a, 0x01, 0x61]);
      const cases: [string, Buffer[], Record<string, string>][] = [
        ['FetchJWTSVID', [frame(true, Buffer.from('not gzip at all'))], { 'grpc-encoding': 'gzip' }], // does not inflate
        ['FetchJWTSVID', [frame(false, audience), frame(false, audience)], {}], // two messages on a unary method
        ['FetchX509SVID', [frame(false, Buffer.alloc(0)), frame(false, Buffer.alloc(0))], {}], // two on a server stream
        ['FetchJWTSVID', [], {}], // none before the half-close
      ];
      for (const [method, frames, extra] of cases) {
        const r = await call(method, frames, extra);
        expect(r.status, `${method} ${frames.length} frames ${JSON.stringify(extra)}`).toBe(String(grpc.status.INVALID_ARGUMENT));
        expect(r.code).toBe('TESSERA_ERR_PROTO_MALFORMED');
      }
      expect(events.filter((e) => e.endsWith(':malformed')).sort()).toEqual(['FetchJWTSVID:malformed', 'FetchJWTSVID:malformed', 'FetchJWTSVID:malformed', 'FetchX509SVID:malformed']);
      // The same connection still gets an SVID (the stream's first message; the test then cancels it).
      const got = await new Promise<number>((ok) => {
        const req = session.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/FetchX509SVID', 'content-type': 'application/grpc', te: 'trailers', 'workload.spiffe.io': 'true' });
        req.on('error', () => undefined);
        req.once('data', (d: Buffer) => {
          ok(d.length);
          req.close(http2.constants.NGHTTP2_CANCEL);
        });
        req.end(frame(false, Buffer.alloc(0)));
      });
      expect(got).toBeGreaterThan(100);
    } finally {
      session.destroy();
    }
  });

  test('answers Unavailable (retryable) before the first SVID', async () => {
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed });
    client = genericClient(socket());
    const s = collect(client.FetchX509SVID({}, header()) as never);
    await s.until(() => s.status() !== undefined);
    expect(s.status()!.code).toBe(grpc.status.UNAVAILABLE);
  });

  test('a missing socket directory is created 0755; the socket is 0666 (connectable by every uid)', async () => {
    const path = join(tmp.dir, 'run/workload/workload.sock');
    const umask = process.umask(0o077);
    try {
      server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: path, feed });
    } finally {
      process.umask(umask);
    }
    expect(statSync(join(tmp.dir, 'run/workload')).mode & 0o777).toBe(0o755);
    expect(statSync(path).mode & 0o777).toBe(0o666);
  });

  describe.skipIf(process.getuid?.() !== 0)('an app container running as another uid (needs root to switch uid)', () => {
    const NOBODY = 65534;
    /** The socket's directory (created by the server), inside a temp dir others may traverse but not list. */
    const sharedDir = () => {
      chmodSync(tmp.dir, 0o711);
      return join(tmp.dir, 'workload');
    };

    test('connects as uid 65534 and gets the SVID, but cannot replace the socket', async () => {
      const dir = sharedDir();
      feed.set(identityOf(await ca.mintSvid(ID), ca));
      server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: join(dir, 'workload.sock'), feed });
      const got = await fetchSvidAs(NOBODY, join(dir, 'workload.sock'));
      expect(got).toEqual({ ok: true, spiffeId: ID, uid: NOBODY });
      const rm = await asUid(NOBODY, ['-e', `require('node:fs').unlinkSync(process.argv[1])`, join(dir, 'workload.sock')]);
      expect(rm.code).not.toBe(0);
      expect(rm.stderr).toContain('EACCES');
    });

    test('connects through a read-only bind mount of the socket directory (the app container mount)', async (ctx) => {
      const dir = sharedDir();
      feed.set(identityOf(await ca.mintSvid(ID), ca));
      server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: join(dir, 'workload.sock'), feed });
      const appView = join(tmp.dir, 'app-view');
      mkdirSync(appView, { mode: 0o755 });
      const mounted = await run('mount', ['--bind', '-o', 'ro', dir, appView]).catch(() => ({ code: 1 }));
      if (mounted.code !== 0) return ctx.skip();
      try {
        expect(await fetchSvidAs(NOBODY, join(appView, 'workload.sock'))).toEqual({ ok: true, spiffeId: ID, uid: NOBODY });
      } finally {
        await run('umount', [appView]);
      }
    });
  });

  test('replaces a stale socket but never a regular file', async () => {
    // A crashed owner leaves its socket file behind: listen, then die by SIGKILL.
    const script = `require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`;
    await run(process.execPath, ['-e', script, socket()]).catch(() => undefined);
    expect(lstatSync(socket()).isSocket()).toBe(true);
    server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: socket(), feed });
    await server.close();
    server = undefined;
    const file = join(tmp.dir, 'not-a-socket');
    writeFileSync(file, 'data');
    await expect(WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: file, feed })).rejects.toMatchObject({ code: 'TESSERA_ERR_WORKLOAD_API_SOCKET' });
  });
});
