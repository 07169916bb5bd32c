// After a rapid-reset cut, nothing above the GOAWAY's last stream id reaches the app (audit 62l F1). The edge cuts an
// HTTP/2 client past its premature-reset budget with GOAWAY ENHANCE_YOUR_CALM naming the last stream it processed;
// requests that came in the same read as the cut (nghttp2 still delivers them) were forwarded all the same, while
// the client, told they were not processed, may send them again on another connection: a POST reached the app twice.
// They are refused now (REFUSED_STREAM), never forwarded. A real edge, a raw HTTP/2 client over TLS writing 110
// opened-and-reset streams then 20 POSTs in one write, a Node app that logs what it received.
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { edgeConfigYaml } from '../helpers/edge-config.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { h2Frame, hpackBlock } from '../helpers/raw-h2-app.js';
import { rawH2TlsClient } from '../helpers/raw-h2-client.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const HEADERS = 1;
const RST_STREAM = 3;
const END_STREAM_HEADERS = 0x5;
const CANCEL = 8;

let dir: string;
let cleanup: () => Promise<void>;
let app: Server;
let edge: ProxyProcess;
let web: TestCa;
/** The paths the app received. */
const received: string[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((req, res) => {
    received.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));
  const mesh = await TestCa.create({ trustDomain: 'example.org' });
  await writeSvidFiles(mesh, 'spiffe://example.org/ns/edge/sa/gateway', join(dir, 'edge'));
  web = await TestCa.create({ trustDomain: 'web.test' });
  const cert = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['app.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'edge.yaml'), edgeConfigYaml({ routes: [`{ host: app.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true }`] }));
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  app?.close();
  await cleanup?.();
});

const block = (method: string, path: string) => hpackBlock([[':method', method], [':scheme', 'https'], [':path', path], [':authority', 'app.test']]);

test('the streams that came in the same read as a rapid-reset cut, past its GOAWAY, never reach the app', async () => {
  for (let round = 0; round < 4; round++) {
    const c = await rawH2TlsClient(edge.ports.get('edge/public')!, 'app.test', web.bundlePem());
    const { socket } = c;
    await new Promise((r) => setTimeout(r, 100));
    const frames: Buffer[] = [];
    let id = 1;
    for (let i = 0; i < 110; i++, id += 2) frames.push(h2Frame(HEADERS, END_STREAM_HEADERS, id, block('GET', `/r${round}/reset/${id}`)), h2Frame(RST_STREAM, 0, id, Buffer.from([0, 0, 0, CANCEL])));
    const posts: number[] = [];
    for (let i = 0; i < 20; i++, id += 2) {
      posts.push(id);
      frames.push(h2Frame(HEADERS, END_STREAM_HEADERS, id, block('POST', `/r${round}/post/${id}`)));
    }
    socket.write(Buffer.concat(frames));
    await until('the GOAWAY', () => c.goawayLastIds.length > 0, 10_000, 20);
    await new Promise((r) => setTimeout(r, 500));
    const last = c.goawayLastIds[0]!;
    const past = received.filter((p) => p.startsWith(`/r${round}/post/`)).map((p) => Number(p.split('/').pop())).filter((sid) => sid > last);
    expect(past, `round ${round}: GOAWAY last stream ${last}`).toEqual([]);
    socket.destroy();
  }
}, 60_000);
