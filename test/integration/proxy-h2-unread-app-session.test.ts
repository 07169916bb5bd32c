// HTTP/2 clients that never read their answers must not break the sidecar's shared session to an HTTP/2 app for
// everyone (audit 27a, finding 1). Real `tessera proxy` processes: an outbound h2c listener (web) to an inbound
// `http2` listener (api) to a real node:http2 app in this process, with Node's server defaults. The attacker opens
// 10 connections with SETTINGS_INITIAL_WINDOW_SIZE = 0, each with 100 GETs of a 1 MB answer, and reads nothing.
// The app's server counts each unsent answer in its session's memory (maxSessionMemory, 10 MB): about ten fill
// it, and from then on it refuses every new stream of that session with ENHANCE_YOUR_CALM, another caller's too,
// and ends the session once it has refused 100 in a row. Before the fix every stream went to the one session, a
// bystander got 502 upstream_reset throughout the attack, and a session left refusing stayed in use after the
// attacker had gone (every later request a 502, for good). Now a session the app refused a stream on takes no new
// one, an idempotent request is sent again on another, and a session carries at most 100 streams.
import { readFile, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const BIG = Buffer.alloc(1024 * 1024, 'a');
const CONNS = 10;
const STREAMS = 100;

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
let web: ProxyProcess;
let app: http2.Http2Server;
let webTls: { cert: string; key: string; ca: string };
/** Big answers the app began to send. */
let bigAnswered = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  // Node's server defaults, maxSessionMemory (10 MB) and its 100 refused streams in a row included.
  app = http2.createServer();
  app.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': 200 });
      const big = String(headers[':path']).startsWith('/big');
      if (big) bigAnswered++;
      stream.end(big ? BIG : 'ok');
    });
  });
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const w = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  webTls = { cert: await readFile(w.certFile, 'utf8'), key: await readFile(w.keyFile, 'utf8'), ca: await readFile(w.bundleFile, 'utf8') };
  const identity = (name: string) =>
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nauthorization: { defaultAction: allow }\n`;
  await writeFile(join(dir, 'api.yaml'), `${identity('api')}inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http2 }\n`);
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const upstream = `127.0.0.1:${api.ports.get('inbound/app')}`;
  await writeFile(join(dir, 'web.yaml'), `${identity('web')}outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: ${upstream}, spiffeId: ${API}, protocol: http2 }\n`);
  web = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** One GET on a fresh connection, read to the end: its status and x-tessera-error ("" when none), or the error. */
async function get(url: string, options: http2.SecureClientSessionOptions = {}): Promise<string> {
  const session = http2.connect(url, options);
  session.on('error', () => undefined);
  try {
    return await new Promise<string>((resolve) => {
      const req = session.request({ ':path': '/by' });
      let head = '';
      req.on('response', (h) => (head = `${h[':status']} ${h['x-tessera-error'] ?? ''}`.trim()));
      req.on('error', (e: Error) => resolve(`error ${e.message}`));
      req.on('close', () => resolve(head || `reset ${req.rstCode}`));
      req.resume();
      req.end();
    });
  } finally {
    session.destroy();
  }
}

const viaOutbound = () => get(`http://127.0.0.1:${web.ports.get('outbound/api')}`);
const viaInbound = () => get(`https://127.0.0.1:${api.ports.get('inbound/app')}`, { ...webTls, checkServerIdentity: () => undefined });

describe('clients that never read their answers, on the shared session to an HTTP/2 app', () => {
  test('a bystander is served while they are there, and every request after they left', async () => {
    expect(await viaOutbound()).toBe('200');
    const attackers: http2.ClientHttp2Session[] = [];
    try {
      for (let c = 0; c < CONNS; c++) {
        const session = http2.connect(`http://127.0.0.1:${web.ports.get('outbound/api')}`, { settings: { initialWindowSize: 0 } });
        session.on('error', () => undefined);
        attackers.push(session);
        for (let i = 0; i < STREAMS; i++) {
          const req = session.request({ ':path': `/big/${c}/${i}` });
          req.on('error', () => undefined);
          req.pause();
        }
      }
      // The app's sessions are full of unsent answers (about ten each) and the burst is over: a quiet second (no
      // new answer begun) ends the wait, nothing is timed.
      let last = -1;
      await until('the attack settles', () => {
        const quiet = bigAnswered === last && bigAnswered >= 20;
        last = bigAnswered;
        return quiet;
      }, 60_000, 1_000);
      const during: string[] = [];
      for (let i = 0; i < 5; i++) during.push(await viaOutbound());
      expect(during).toEqual(Array(5).fill('200'));
    } finally {
      for (const s of attackers) s.destroy();
    }
    // Gone: the proxies cancel its streams. Every request now, through both sidecars and on the inbound directly.
    await new Promise((r) => setTimeout(r, 1_000));
    const after: string[] = [];
    for (let i = 0; i < 5; i++) after.push(await viaOutbound(), await viaInbound());
    expect(after).toEqual(Array(10).fill('200'));
  }, 120_000);
});
