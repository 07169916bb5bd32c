// The control plane died with SIGSEGV in Node's HTTP/2 binding under sidecar churn, with or without an inspector
// (audits 58c F2, 58g): nghttp2_session_want_read <- Http2Session::OnStreamAfterWrite <- TLSWrap::InvokeQueued, the
// session's nghttp2 pointer already null (its destructor had run). node:http2 lets go of a session's native handle as
// soon as the session is destroyed, while its socket may still have a write to complete into that session; a GC in
// the JavaScript that completion calls frees the session under its own frame. The guard holds each handle until the
// session's socket has closed. Here, in a process of its own (--expose-gc): a grpc-js server behind our TLS listener
// and the guard's injector, each session destroyed during its call, a full GC right where node:http2 has let go of
// the handle with the socket still open (the turn after finishSessionClose's end()), and another once the socket has
// closed. This shows the hold, not the crash itself: the crash needs that GC inside the write completion's JavaScript.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';
import { WATCH_HANDLE_SOURCE } from '../../helpers/handle-hold-probe.js';
import { REPO_ROOT } from '../../helpers/run.js';
import { TestCa } from '../../helpers/test-ca.js';

const GUARD = pathToFileURL(join(REPO_ROOT, 'dist/shared-io/grpc-session-guard.js')).href;

const CHILD = `${WATCH_HANDLE_SOURCE}
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { GrpcSessionGuard } from ${JSON.stringify(GUARD)};
const { chainPem, keyPem, caPem, rounds } = JSON.parse(process.env.GC_TEST);
const pass = (b) => b;
const SERVICE = { Down: { path: '/t.T/Down', requestStream: false, responseStream: true, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass, originalName: 'Down' } };
const server = new grpc.Server();
server.addService(SERVICE, { Down: (call) => { call.write(Buffer.alloc(4096, 1)); call.write(Buffer.alloc(4096, 2)); call.end(); } });
const { injector, guard } = GrpcSessionGuard.injector(server, grpc.ServerCredentials.createInsecure(), { timers: { setInterval, clearInterval, setTimeout }, messages: { timeoutMs: 10_000, maxMessageBytes: 1 << 20, nowMs: Date.now }, onRejected: () => {} });
const h2 = [...server.http2Servers.keys()].at(-1);
let raw;
// Each session: its native handle watched through a WeakRef only; the session destroyed once its call is under way;
// a full GC the turn after node:http2 has let go of the handle (finishSessionClose's end()) with the socket still
// open, then again once the socket has closed.
const seen = [];
h2.on('session', (session) => watchHandle(session, raw, seen));
h2.on('stream', (stream) => setImmediate(() => stream.session?.destroy()));
const listener = tls.createServer({ cert: chainPem, key: keyPem, ALPNProtocols: ['h2'] }, (s) => {
  raw = s;
  s.on('error', () => {});
  injector.injectConnection(s);
});
await new Promise((r) => listener.listen(0, '127.0.0.1', r));
const Client = grpc.makeGenericClientConstructor(SERVICE, 't.T');
for (let i = 0; i < rounds; i++) {
  const creds = grpc.credentials.createSsl(Buffer.from(caPem), null, null, { checkServerIdentity: () => undefined });
  const c = new Client('127.0.0.1:' + listener.address().port, creds, { 'grpc.ssl_target_name_override': 'x', 'grpc.default_authority': 'x' });
  await new Promise((r) => {
    const call = c.Down(Buffer.alloc(1));
    call.on('data', () => {});
    call.on('error', () => r());
    call.on('end', () => r());
  });
  c.close();
  while (seen.length <= i) await new Promise((r) => setTimeout(r, 10));
}
console.log(JSON.stringify({ seen, pinned: guard.pinned }));
server.forceShutdown();
injector.destroy();
guard.stop();
listener.close();
process.exit(0);
`;

function child(env: Record<string, string>): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD], { cwd: REPO_ROOT, timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; signal?: string | null }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

test("a destroyed session's native handle outlives a GC while its socket is open, and is let go once it has closed", async () => {
  const ca = await TestCa.create();
  const svid = await ca.mintSvid('spiffe://example.org/tessera/control-plane');
  const r = await child({ GC_TEST: JSON.stringify({ chainPem: svid.chainPem, keyPem: svid.keyPem, caPem: ca.bundlePem(), rounds: 5 }) });
  expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 0, signal: null });
  // Before the guard held them: "collected/released" every time (the session freed with its socket still open).
  expect(JSON.parse(r.stdout)).toEqual({ seen: Array(5).fill('held/released'), pinned: 0 });
}, 40_000);
