// A connection between proxies carries requests only under the certificates it was made with, both of them valid,
// with real processes (outside audits 29b and 29c). Server side: after an inbound proxy takes a new SVID, a session
// ticket issued under the earlier one no longer resumes, so a client's next connection is a full handshake that
// checks the certificate now served (an earlier SVID that outlives its successor, or a CA since removed, would
// otherwise go on being vouched for by resumption). Client side: once a proxy's own SVID expires unrenewed, its
// multiplexed session to a peer takes no new request; the next connection presents the expired certificate and
// the peer refuses it, as the expired-certs runbook says.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, tlsOptionsOf, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: ReturnType<typeof createServer>;
let api: ProxyProcess;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`);
  api = await startProxyProcess(join(dir, 'api.yaml'));
}, 30_000);

afterAll(async () => {
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** One TLS connection to api's inbound listener with web's SVID, offering `session`: whether it resumed, the served serial and the last ticket. */
function connect(client: { cert: string; key: string; ca: string }, session?: Buffer): Promise<{ resumed: boolean; serial: string; ticket: Buffer | undefined; answer: string }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    let answer = '';
    const s = tls.connect({ host: '127.0.0.1', port: api.ports.get('inbound/app')!, ...client, servername: 'localhost', checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}) });
    s.on('session', (t: Buffer) => {
      ticket = t;
    });
    s.once('secureConnect', () => {
      const resumed = s.isSessionReused();
      const serial = resumed ? '' : (s.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '');
      // A request read to its end: TLS 1.3 tickets come after the handshake, before the answer.
      s.write('GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n');
      s.on('data', (b: Buffer) => {
        answer += b.toString('latin1');
      });
      s.once('end', () => {
        s.destroy();
        resolve({ resumed, serial, ticket, answer: answer.split('\r\n')[0] ?? '' });
      });
    });
    s.once('error', reject);
  });
}

async function servedSerial(p: ProxyProcess): Promise<string> {
  return ((await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as { servedSerial: string }).servedSerial;
}

test('after the inbound proxy takes a new SVID, a ticket from before no longer resumes: the next handshake is full and sees the new SVID', async () => {
  const client = await tlsOptionsOf(await writeSvidFiles(ca, WEB, join(dir, 'web-client')));
  const first = await connect(client);
  expect(first).toMatchObject({ resumed: false, answer: 'HTTP/1.1 200 OK' });
  const again = await connect(client, first.ticket);
  expect(again.resumed).toBe(true);

  // A successor that expires before the SVID it replaces: only a full handshake shows it.
  const next = await writeSvidFiles(ca, API, join(dir, 'api'), { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) });
  await until('the new SVID served', async () => (await servedSerial(api)) === next.serial);
  const after = await connect(client, again.ticket ?? first.ticket);
  expect(after).toMatchObject({ resumed: false, serial: next.serial, answer: 'HTTP/1.1 200 OK' });
  // Tickets issued under the new SVID resume again.
  expect((await connect(client, after.ticket)).resumed).toBe(true);
});

test("once the client proxy's own SVID expires, its multiplexed session takes no new request and the peer refuses the expired certificate", async () => {
  // X.509 times are whole seconds: NotAfter 5 to 6 s from now.
  const notAfter = new Date(Math.ceil(Date.now() / 1000) * 1000 + 5_000);
  await writeSvidFiles(ca, WEB, join(dir, 'web'), { notBefore: new Date(Date.now() - 60_000), notAfter });
  await writeFile(join(dir, 'web.yaml'), `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`);
  const web = await startProxyProcess(join(dir, 'web.yaml'));
  try {
    const get = async () => {
      const res = await fetch(`http://127.0.0.1:${web.ports.get('outbound/api')}/`);
      await res.arrayBuffer();
      return { status: res.status, error: res.headers.get('x-tessera-error') };
    };
    expect(await get()).toEqual({ status: 200, error: null });
    const metrics = await (await fetch(`http://127.0.0.1:${web.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_mux_sessions_active\{direction="outbound"\} 1/);
    // Past NotAfter (the proxies judge whole seconds: one more to be past it).
    while (Date.now() <= notAfter.getTime() + 1_000) await new Promise((r) => setTimeout(r, 100));
    expect(await get()).toEqual({ status: 502, error: 'upstream_unavailable' });
    const refused = (await (await fetch(`http://127.0.0.1:${api.admin}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tessera_tls_handshakes_total{') && l.includes('direction="inbound"') && l.includes('reason="expired"'));
    expect(refused.reduce((n, l) => n + Number(l.split(' ').pop()), 0)).toBeGreaterThan(0);
  } finally {
    await web.stop();
  }
});
