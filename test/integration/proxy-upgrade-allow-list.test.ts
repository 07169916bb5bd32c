// Upgrades through real proxy processes to an app that accepts any upgrade it is offered (audit 57a F3): only the
// protocols on the allow-list switch, on every HTTP/1.1 listener kind — web's outbound listener (multiplexed to api's
// inbound), api's inbound reached directly over mTLS, and an edge (TLS, anonymous client) in front of api. Every
// other offer — HTTP itself and what carries HTTP requests after the switch (h2c and its draft tokens, SPDY, TLS/1.x
// of RFC 2817), a list holding one of them, a value that is not a list of protocol tokens — reaches the app as a
// plain request, without Upgrade or Connection: upgrade, and is answered as one. A proxy whose `upgrades` names more
// protocols lets those switch and still drops the HTTP ones. The edge's HTTP/2 side offers no extended CONNECT.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { type RawTarget, firstStatus } from '../helpers/raw-http.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const OPS = `spiffe://${TD}/ns/default/sa/ops`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

/** Offers that must not switch on a proxy with the default list: the audit's spellings and their relatives. */
const DROPPED = [
  'h2c', 'H2C', 'HTTP/2.0', 'h2', 'h2c-14', 'h2c-17', 'SPDY/3.1', 'TLS/1.2', 'TLS/1.0', 'h2c;q=1', '"h2c"',
  'websocket, h2c', 'websocket, TLS/1.2', 'websocket;q=1', '"websocket"', 'tcp', 'raw',
];
const SWITCHED = ['websocket', 'WebSocket'];

let dir: string;
let cleanup: () => Promise<void>;
let app: net.Server;
const procs: ProxyProcess[] = [];
let api: ProxyProcess;
let web: ProxyProcess;
let webTls: { cert: string; key: string; ca: string };
let edgeCa: string;
/** The head of every request the app received, by path. */
const seen = new Map<string, string>();

/**
 * An app that takes any upgrade: a head with an Upgrade line gets a 101 naming what it offered, and the connection
 * then echoes as `tunnel:<bytes>`; a head without one gets a plain 200 (and the connection stays HTTP).
 */
function anyUpgradeApp(s: net.Socket): void {
  let buf = '';
  let tunnel = false;
  s.on('error', () => undefined);
  s.on('end', () => s.end());
  s.on('data', (d: Buffer) => {
    if (tunnel) return void s.write(`tunnel:${d.toString('latin1')}`);
    buf += d.toString('latin1');
    for (let end = buf.indexOf('\r\n\r\n'); end >= 0 && !tunnel; end = buf.indexOf('\r\n\r\n')) {
      const head = buf.slice(0, end + 4);
      buf = buf.slice(end + 4);
      seen.set(head.split(' ')[1] ?? '', head);
      const offered = /\r\nupgrade:[ \t]*([^\r]*)/i.exec(head)?.[1];
      if (offered === undefined) {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain');
        continue;
      }
      tunnel = true;
      s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${offered}\r\n\r\n`);
      if (buf) s.write(`tunnel:${buf}`);
    }
  });
}

function proxyYaml(name: string, body: string): string {
  return `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\n${body}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`;
}

async function start(name: string, body: string): Promise<ProxyProcess> {
  await writeFile(join(dir, `${name}.yaml`), proxyYaml(name, body));
  const p = await startProxyProcess(join(dir, `${name}.yaml`));
  procs.push(p);
  return p;
}

const allow = (selector: string) =>
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-web }\nspec:\n  selector: ${selector}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n      to: { paths: ["/v1/**"] }\n`;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  app = net.createServer({ allowHalfOpen: true }, anyUpgradeApp);
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, OPS, join(dir, 'ops'));
  const webSvid = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  webTls = { cert: await readFile(webSvid.certFile, 'utf8'), key: await readFile(webSvid.keyFile, 'utf8'), ca: ca.bundlePem() };
  const site = await TestCa.create({ trustDomain: 'site.test', rootName: 'CN=Site CA, O=Test' });
  const siteCert = await site.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
  edgeCa = site.bundlePem();
  await writeFile(join(dir, 'site.pem'), siteCert.chainPem);
  await writeFile(join(dir, 'site.key'), siteCert.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), allow(API));
  await writeFile(join(dir, 'policies', 'ops.yaml'), allow(OPS).replace('name: allow-web', 'name: ops-allow-web'));

  api = await start('api', `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\nauthorization: { policiesDir: policies }\n`);
  const apiIn = api.ports.get('inbound/app')!;
  // web: an outbound listener to api (the multiplexed transport, the default) and an edge in front of api.
  web = await start(
    'web',
    [
      'outbound:',
      `  - { name: app, listen: 127.0.0.1:0, upstream: 127.0.0.1:${apiIn}, spiffeId: ${API} }`,
      'edge:',
      '  - name: public',
      '    listen: 127.0.0.1:0',
      '    certFile: site.pem',
      '    keyFile: site.key',
      '    routes:',
      `      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:${apiIn}, spiffeId: ${API} }`,
      '',
    ].join('\n'),
  );
}, 45_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await new Promise<void>((r) => app?.close(() => r()));
  await cleanup?.();
});

/** Every HTTP/1.1 listener kind of a proxy with the default list, as a raw client reaches it. */
const LISTENERS: readonly [string, () => RawTarget][] = [
  ['outbound (multiplexed to the inbound)', () => ({ port: web.ports.get('outbound/app')! })],
  ['inbound (mTLS, direct)', () => ({ port: api.ports.get('inbound/app')!, tls: webTls })],
  ['edge (TLS, anonymous)', () => ({ port: web.ports.get('edge/public')!, tls: { ca: edgeCa, servername: 'localhost', ALPNProtocols: ['http/1.1'] } })],
];

let n = 0;
/**
 * Offers `upgrade` on a fresh connection (with the h2c upgrade's HTTP2-Settings, as the audit did) and reads the
 * answer's head; after a 101 it sends `ping`, the new protocol's first bytes, which the app echoes through the tunnel.
 */
function offer(target: RawTarget, upgrade: string): Promise<{ status: number; text: string; app: string }> {
  const path = `/v1/u${++n}`;
  const head = `GET ${path} HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: ${upgrade}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`;
  return new Promise((resolve) => {
    const socket = target.tls ? tls.connect({ host: '127.0.0.1', port: target.port, checkServerIdentity: () => undefined, ...target.tls }) : net.connect(target.port, '127.0.0.1');
    let text = '';
    const done = () => {
      clearTimeout(cap);
      socket.destroy();
      resolve({ status: firstStatus(text), text, app: seen.get(path) ?? '' });
    };
    const cap = setTimeout(done, 8_000);
    socket.once(target.tls ? 'secureConnect' : 'connect', () => socket.write(head));
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', (d: Buffer) => {
      const before = text;
      text += d.toString('latin1');
      if (firstStatus(text) === 101) {
        if (!before.includes('\r\n\r\n') && text.includes('\r\n\r\n')) socket.write('ping');
        if (text.endsWith('tunnel:ping')) done();
      } else if (text.endsWith('plain') || (text.includes('\r\n\r\n') && firstStatus(text) !== 200)) done();
    });
  });
}

describe.each(LISTENERS)('%s, default upgrades', (_kind, target) => {
  test.each(DROPPED)('%s is not passed on: the app gets a plain request and answers it as one', async (upgrade) => {
    const r = await offer(target(), upgrade);
    expect(r.status, r.text).toBe(200);
    expect(r.app).toMatch(/^GET \/v1\/u\d+ HTTP\/1\.1\r\n/);
    expect(r.app, 'hop-by-hop upgrade fields reached the app').not.toMatch(/\r\n(upgrade|http2-settings):/i);
    expect(r.app).not.toMatch(/\r\nconnection:[^\r]*upgrade/i);
  });

  test.each(SWITCHED)('%s switches, and bytes flow through the tunnel', async (upgrade) => {
    const r = await offer(target(), upgrade);
    expect(r.status, r.text).toBe(101);
    expect(r.app).toMatch(new RegExp(`\\r\\nupgrade: ${upgrade}\\r\\n`, 'i'));
    expect(r.text).toMatch(/tunnel:ping$/);
  });
});

describe('a proxy whose upgrades names more protocols (websocket, SPDY/3.1, tcp)', () => {
  let ops: ProxyProcess;
  beforeAll(async () => {
    const appPort = (app.address() as net.AddressInfo).port;
    ops = await start('ops', `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\nauthorization: { policiesDir: policies }\nupgrades: [websocket, SPDY/3.1, tcp]\n`);
  }, 30_000);
  const target = (): RawTarget => ({ port: ops.ports.get('inbound/app')!, tls: webTls });

  test.each(['SPDY/3.1', 'spdy/3.1', 'tcp', 'TCP, websocket'])('%s switches', async (upgrade) => {
    const r = await offer(target(), upgrade);
    expect(r.status, r.text).toBe(101);
    expect(r.text).toMatch(/tunnel:ping$/);
  });

  test.each(['h2c', 'HTTP/2.0', 'h2c-14', 'TLS/1.2', 'SPDY/3', 'tcp;x', 'tcp, h2c'])('%s is still dropped', async (upgrade) => {
    const r = await offer(target(), upgrade);
    expect(r.status, r.text).toBe(200);
    expect(r.app).not.toMatch(/\r\nupgrade:/i);
  });
});

test("the edge's HTTP/2 side offers no extended CONNECT (RFC 8441): an HTTP/2 client has no way to ask for an upgrade", async () => {
  const session = http2.connect(`https://localhost:${web.ports.get('edge/public')}`, { ca: edgeCa });
  try {
    const settings = await new Promise<http2.Settings>((resolve, reject) => {
      session.once('remoteSettings', resolve);
      session.once('error', reject);
    });
    expect(settings.enableConnectProtocol ?? false).toBe(false);
  } finally {
    session.close();
  }
});
