// A stream the upstream's proxy refuses (RST REFUSED) is replayed, as HTTP/2 replays a refused stream (outside audit
// 56b F3): a real `tessera proxy` (web) calls a hostile tessera-mux/1 server over mTLS that refuses the first
// stream(s) it is sent and then serves. A refused stream was provably not processed, so the request goes again
// once, on a new session (web opens no stream more on the one that refused: it says GOAWAY there), whatever its
// method, within the request's retry rules: no body, or a body held (a fixed upstream holds none), no byte of an
// answer yet. A second refusal, a refusal after part of an answer, or a body not held is answered 502
// `upstream_reset` as before. Before, every refusal was an immediate 502.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { MuxCode } from '../../proxy/src/mux/mux-frame.js';
import { call, jsonLines } from '../helpers/mux-mesh.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { type RefusingMuxServer, startRefusingMuxServer } from '../helpers/refusing-mux-server.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let cleanup: () => Promise<void>;
let hs: RefusingMuxServer;
let web: ProxyProcess;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  hs = await startRefusingMuxServer(ca, API);
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\n` +
      `outbound:\n  - { name: hs, listen: 127.0.0.1:0, upstream: 127.0.0.1:${hs.port}, spiffeId: ${API} }\ntelemetry: { accessLog: stdout }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await hs?.close();
  await cleanup?.();
});

beforeEach(() => {
  hs.plan.refuse = 0;
  hs.plan.partialFirst = false;
  hs.plan.code = MuxCode.Refused;
});

const port = () => web.ports.get('outbound/hs')!;

/** web's access-log line for `path` (the last one). */
async function logged(path: string): Promise<Record<string, unknown>> {
  await until(`the access log line of ${path}`, () => jsonLines(web.stdout()).some((l) => l.path === path), 10_000, 20);
  return jsonLines(web.stdout()).filter((l) => l.path === path).pop()!;
}

/** The request lines for `path` each session of the server was sent, for the sessions that were sent any. */
const carrying = (path: string) => hs.carrying(path);

describe('a refused stream', () => {
  test.each(['GET', 'DELETE', 'POST'])('%s without a body, refused once: sent again on a new session and answered 200', async (method) => {
    hs.plan.refuse = 1;
    const path = `/once/${method}`;
    const a = await call(port(), path, { method });
    expect(a.status).toBe(200);
    // The refusing session got a GOAWAY from web and carried nothing more; the replay went to a new session.
    const sessions = carrying(path);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]!.goaway).toBe(true);
    expect(sessions.map((x) => x.requests.filter((r) => r.includes(path)).length)).toEqual([1, 1]);
    expect(a.text).toBe(`served ${method} ${path} HTTP/1.1 on session ${hs.plan.sessions.indexOf(sessions[1]!) + 1}`);
    expect((await logged(path)).status).toBe(200);
  });

  test('refused twice: one replay only, then 502 upstream_reset (the first refusal on a stream pooled after an exchange)', async () => {
    // A stream that carried an exchange waits in web's pool: its refusal is no stale keep-alive connection, and the
    // request is not replayed once for each.
    expect((await call(port(), '/before-twice')).status).toBe(200);
    hs.plan.refuse = 2;
    const a = await call(port(), '/twice');
    expect(a.status).toBe(502);
    expect(carrying('/twice')).toHaveLength(2);
    const line = await logged('/twice');
    expect(line.status).toBe(502);
    expect(line.error).toBe('upstream_reset');
    hs.plan.refuse = 0;
    expect((await call(port(), '/after-twice')).status).toBe(200); // a new session serves the next request
  });

  test('refused after the start of an answer came: no replay, 502 upstream_reset', async () => {
    hs.plan.refuse = 1;
    hs.plan.partialFirst = true;
    const a = await call(port(), '/partial');
    expect(a.status).toBe(502);
    expect(carrying('/partial')).toHaveLength(1);
    expect((await logged('/partial')).error).toBe('upstream_reset');
  });

  test('a POST whose body is not held (a fixed upstream holds none): no replay, 502 upstream_reset', async () => {
    hs.plan.refuse = 1;
    const a = await call(port(), '/with-body', { method: 'POST', body: Buffer.from('a body the proxy did not keep') });
    expect(a.status).toBe(502);
    expect(carrying('/with-body')).toHaveLength(1);
  });
});
