// Session-ticket keys are replaced on a schedule (limits.ticketKeyRotation): a fresh ticket resumes, a ticket from
// before the rotation no longer does (a full handshake instead), and the request succeeds either way.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { tlsGet } from '../helpers/tls-get.js';
import { type MintedSvid, TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const API = 'spiffe://example.org/ns/default/sa/api';
let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let web: MintedSvid;
let app: ReturnType<typeof createServer>;
let proxy: ProxyProcess;

function get(session?: Buffer) {
  return tlsGet({ port: proxy.ports.get('inbound/app')!, certPem: web.chainPem, keyPem: web.keyPem, caPem: ca.bundlePem(), session });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: 'example.org' });
  web = await ca.mintSvid('spiffe://example.org/ns/default/sa/web');
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nlimits: { ticketKeyRotation: 2s }\n`);
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  app?.close();
  await cleanup?.();
});

test('a fresh ticket resumes; after the keys rotate it does not, and the request still succeeds', async () => {
  // A rotation may fall between getting and using a ticket: try a few times for a resumption within one key period.
  let resumedOnce = false;
  let old: Buffer | undefined;
  let oldAt = 0;
  for (let i = 0; i < 5 && !resumedOnce; i++) {
    const first = await get();
    expect(first.answer).toMatch(/^HTTP\/1\.1 200 /);
    old = first.ticket;
    oldAt = Date.now();
    const again = await get(first.ticket);
    expect(again.answer).toMatch(/^HTTP\/1\.1 200 /);
    resumedOnce = again.resumed;
  }
  expect(resumedOnce).toBe(true);
  // Its key is replaced within two rotations (the previous key still resumes for one period): poll for that, bounded.
  let late = { resumed: true, answer: '' };
  await until('a ticket from before the rotations stops resuming', async () => {
    late = await get(old);
    expect(late.answer).toMatch(/^HTTP\/1\.1 200 /);
    return !late.resumed;
  }, 10_000, 200);
  expect(Date.now() - oldAt).toBeLessThan(2 * 2_000 + 1_500); // two 2 s rotations, with room for a loaded machine
  expect(late.answer).toMatch(/^HTTP\/1\.1 200 /);
});
