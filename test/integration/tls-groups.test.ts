// `transport.tlsGroups` in real proxy processes: the group the inbound listener settles on with clients offering
// different groups (read from the client's handshake), and two Tessera proxies completing requests when the
// server side accepts the post-quantum hybrid only — which a web proxy can pass only by offering it.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type MintedSvid, TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let caller: MintedSvid;
let app: ReturnType<typeof createServer>;
const procs: ProxyProcess[] = [];

/** An api sidecar (inbound in front of the app) with `groups` as transport.tlsGroups (none: the default). */
async function apiProxy(name: string, groups?: string): Promise<ProxyProcess> {
  await writeSvidFiles(ca, API, join(dir, name));
  const transport = groups ? `transport: { tlsGroups: [${groups}] }\n` : '';
  await writeFile(
    join(dir, `${name}.yaml`),
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n${transport}`,
  );
  const p = await startProxyProcess(join(dir, `${name}.yaml`));
  procs.push(p);
  return p;
}

/** A web sidecar with the default groups, its outbound listener pointed at `upstreamPort`. */
async function webProxy(name: string, upstreamPort: number): Promise<ProxyProcess> {
  await writeSvidFiles(ca, WEB, join(dir, name));
  await writeFile(
    join(dir, `${name}.yaml`),
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${upstreamPort}, spiffeId: ${API} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  const p = await startProxyProcess(join(dir, `${name}.yaml`));
  procs.push(p);
  return p;
}

/** The group of one mTLS handshake with `port` offering `groups` (Node's default list when absent); or the error. */
function groupWith(port: number, groups?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: caller.chainPem, key: caller.keyPem, rejectUnauthorized: false, ...(groups ? { ecdhCurve: groups } : {}) }, () => {
      resolve((s.getEphemeralKeyInfo() as { name?: string }).name ?? 'unknown');
      s.destroy();
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.setTimeout(5_000, () => s.destroy(new Error('timeout')));
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  caller = await ca.mintSvid(WEB);
  app = createServer((_req, res) => res.end('from-app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
}, 30_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await new Promise<void>((r) => app.close(() => r()));
  await cleanup();
});

describe('inbound listener groups', () => {
  test('default: X25519 with clients that offer it, the hybrid for a client that sent only a hybrid share', async () => {
    const port = (await apiProxy('api-default')).ports.get('inbound/app')!;
    expect(await groupWith(port)).toBe('X25519'); // Node's default client: hybrid and X25519 shares
    expect(await groupWith(port, 'X25519:X25519MLKEM768')).toBe('X25519');
    expect(await groupWith(port, 'X25519MLKEM768:X25519')).toBe('X25519MLKEM768');
  }, 30_000);

  test('hybrid first: the hybrid even from a client that put X25519 first; X25519 for a client without it', async () => {
    const port = (await apiProxy('api-hybrid', 'X25519MLKEM768, X25519')).ports.get('inbound/app')!;
    expect(await groupWith(port)).toBe('X25519MLKEM768');
    expect(await groupWith(port, 'X25519:X25519MLKEM768')).toBe('X25519MLKEM768');
    expect(await groupWith(port, 'X25519:P-256')).toBe('X25519');
  }, 30_000);
});

describe('between two proxies', () => {
  test('a hybrid-only api sidecar serves a default web sidecar (which offers the hybrid) and refuses an X25519-only client', async () => {
    const api = await apiProxy('api-pq-only', 'X25519MLKEM768');
    const inbound = api.ports.get('inbound/app')!;
    expect(await groupWith(inbound, 'X25519:P-256')).toMatch(/^error:/);
    const web = await webProxy('web', inbound);
    const res = await fetch(`http://127.0.0.1:${web.ports.get('outbound/api')}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from-app');
  }, 30_000);
});
