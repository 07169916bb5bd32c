// "Verify in use" dials the inbound listener where it is bound: a proxy whose only inbound listener is bound to
// one address other than 127.0.0.1 (another loopback address, or IPv6 ::1) must still prove its SVID is served
// and become ready — dialling 127.0.0.1 there finds nothing and left such a proxy not ready forever. And the checks
// (after start, each /certs) are not peers' handshakes: tessera_tls_handshakes_total and its duration histogram
// leave them out, on HTTP/1.1 and HTTP/2 listeners alike, while a peer that copies the check's server name is
// counted as any peer.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: ReturnType<typeof createServer>;
const proxies: ProxyProcess[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
}, 30_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  app?.close();
  await cleanup?.();
});

describe.each([
  { name: 'another loopback address', listen: '127.0.0.2:0' },
  { name: 'IPv6 loopback', listen: '[::1]:0' },
])('inbound listener bound to $name only', ({ name, listen }) => {
  test('the served-serial check matches and /ready answers 200', async () => {
    const sub = join(dir, name.replaceAll(' ', '-'));
    const files = await writeSvidFiles(ca, API, sub);
    const config = join(sub, 'proxy.yaml');
    await writeFile(
      config,
      `identity:\n  files: { certFile: svid.pem, keyFile: key.pem, bundleFile: bundle.pem }\ninbound:\n  - { name: app, listen: "${listen}", forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
    );
    const proxy = await startProxyProcess(config);
    proxies.push(proxy);
    const admin = `http://127.0.0.1:${proxy.admin}`;
    type Certs = { serial: string; servedSerial: string | null; lastServedCheck: { match: boolean; served: string | null } | null };
    let certs: Certs | undefined;
    // The check runs right after start; until it has, /ready does not wait for it.
    await until(
      'served check done',
      async () => {
        certs = (await (await fetch(`${admin}/certs`)).json()) as Certs;
        return certs.lastServedCheck !== null;
      },
      10_000,
    );
    expect((await fetch(`${admin}/ready`)).status).toBe(200);
    if (!certs) throw new Error('no /certs answer');
    expect(certs.lastServedCheck?.match).toBe(true);
    expect(certs.lastServedCheck?.served).toBe(files.serial);
    expect(certs.servedSerial).toBe(files.serial);
  });
});

describe.each(['http', 'http2'])('a %s inbound listener', (protocol) => {
  test('the served checks are not counted as handshakes or connections; a peer with the same server name is', async () => {
    const sub = join(dir, `count-${protocol}`);
    await writeSvidFiles(ca, API, sub);
    const config = join(sub, 'proxy.yaml');
    await writeFile(
      config,
      `identity:\n  files: { certFile: svid.pem, keyFile: key.pem, bundleFile: bundle.pem }\ninbound:\n  - { name: app, listen: "127.0.0.1:0", protocol: ${protocol}, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
    );
    const proxy = await startProxyProcess(config);
    proxies.push(proxy);
    const admin = `http://127.0.0.1:${proxy.admin}`;
    // Each /certs answer checks again.
    for (let i = 0; i < 3; i++) await (await fetch(`${admin}/certs`)).json();
    await until('the checks counted as checks', async () => sumSeries(await metricsText(proxy.admin), 'tessera_svid_served_checks_total', { result: 'match' }) >= 1, 10_000);
    const quiet = await metricsText(proxy.admin);
    expect(sumSeries(quiet, 'tessera_tls_handshakes_total', { direction: 'inbound' })).toBe(0);
    expect(sumSeries(quiet, 'tessera_tls_handshake_duration_seconds_count', { direction: 'inbound' })).toBe(0);
    // A peer (another SVID of this trust domain) that sends the check's server name is a peer.
    const web = await ca.mintSvid(`spiffe://${TD}/ns/default/sa/web`);
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: proxy.ports.get('inbound/app')!, servername: 'tessera-served-check.invalid', cert: web.chainPem, key: web.keyPem, ca: ca.bundlePem(), rejectUnauthorized: false, ALPNProtocols: [protocol === 'http' ? 'http/1.1' : 'h2'] });
      s.once('secureConnect', () => {
        s.end();
        resolve();
      });
      s.once('error', reject);
    });
    await until('the peer counted', async () => sumSeries(await metricsText(proxy.admin), 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'success' }) === 1, 5_000);
  });
});
