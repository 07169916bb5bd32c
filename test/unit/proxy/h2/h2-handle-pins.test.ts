// The proxy's HTTP/2 servers hold each session's native handle until its socket has closed (guardH2Server,
// shared-io/http2-handle-pins.ts), as the control plane's gRPC guard does (grpc-session-guard-gc.test.ts): node:http2
// lets go of the handle once the session is destroyed, while its socket may still complete a write into it, and a GC
// in the JavaScript that completion calls freed the session under its own frame (SIGSEGV in
// Http2Session::OnStreamAfterWrite, audits 58c, 58g). In a process of its own (--expose-gc): each session destroyed
// during its stream, a full GC the turn after node:http2 let go of the handle with the socket still open, and another
// once the socket has closed. This shows the hold, not the crash (which needs that GC inside the write completion).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';
import { WATCH_HANDLE_SOURCE } from '../../../helpers/handle-hold-probe.js';
import { REPO_ROOT } from '../../../helpers/run.js';
import { TestCa } from '../../../helpers/test-ca.js';

const GUARD = pathToFileURL(join(REPO_ROOT, 'dist/proxy/src/h2/h2-error-guard.js')).href;
const TIMERS = pathToFileURL(join(REPO_ROOT, 'dist/shared-io/timers.js')).href;

const CHILD = `${WATCH_HANDLE_SOURCE}
import * as http2 from 'node:http2';
import { guardH2Server } from ${JSON.stringify(GUARD)};
import { realTimers } from ${JSON.stringify(TIMERS)};
const { chainPem, keyPem, caPem, rounds, guard } = JSON.parse(process.env.PIN_TEST);
const server = http2.createSecureServer({ cert: chainPem, key: keyPem });
if (guard) guardH2Server(server, realTimers);
let raw;
server.prependListener('secureConnection', (s) => (raw = s));
const seen = [];
server.on('session', (session) => watchHandle(session, raw, seen));
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.respond({ ':status': 200 });
  stream.write(Buffer.alloc(4096, 1));
  setImmediate(() => stream.session?.destroy());
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
for (let i = 0; i < rounds; i++) {
  const c = http2.connect('https://127.0.0.1:' + server.address().port, { ca: caPem, checkServerIdentity: () => undefined });
  c.on('error', () => {});
  await new Promise((r) => {
    const q = c.request({ ':path': '/' });
    q.on('error', () => r());
    q.on('data', () => {});
    q.on('close', () => r());
  });
  c.destroy();
  while (seen.length <= i) await new Promise((r) => setTimeout(r, 10));
}
console.log(JSON.stringify(seen));
server.close();
process.exit(0);
`;

function child(guard: boolean, pki: { chainPem: string; keyPem: string; caPem: string }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD], { cwd: REPO_ROOT, timeout: 30_000, env: { ...process.env, PIN_TEST: JSON.stringify({ ...pki, rounds: 5, guard }) } }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
    });
  });
}

test("a destroyed session's native handle outlives a GC while its socket is open, and is let go once it has closed", async () => {
  const ca = await TestCa.create();
  const svid = await ca.mintSvid('spiffe://example.org/ns/default/sa/api');
  const pki = { chainPem: svid.chainPem, keyPem: svid.keyPem, caPem: ca.bundlePem() };
  const guarded = await child(true, pki);
  expect(guarded.code, guarded.stderr).toBe(0);
  expect(JSON.parse(guarded.stdout)).toEqual(Array(5).fill('held/released'));
  // Without the guard, node:http2 alone: the handle is collected with the socket still open.
  const bare = await child(false, pki);
  expect(bare.code, bare.stderr).toBe(0);
  expect(JSON.parse(bare.stdout)).toContain('collected/released');
}, 60_000);
