// Revocation with real processes: a control plane and two proxies with control-plane identity. Banning a SPIFFE
// ID with `tessera revoke id` closes its open connections (HTTP/1.1, HTTP/2, TCP, and the keep-alive pair) and
// refuses new ones within seconds (counted as `revoked`), refuses its renewal and Config/Watch with the ban's code;
// lifting restores it. A serial ban stops one SVID only; a ban of an upstream's ID stops the client side too; a
// revoked join token cannot attest; bans survive a control-plane restart. All audited.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import * as http2 from 'node:http2';
import { type AddressInfo, type Socket, connect, createServer as createTcpServer } from 'node:net';
import * as tls from 'node:tls';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, createJoinToken, errorCode, joinTokenSign, joinTokenSvid, setBan, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const CLI = `spiffe://${TD}/ns/default/sa/cli`;
/** How fast a ban must take effect on the proxies (bounded polling; typically well under a second). */
const PROPAGATION_MS = 10_000;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;
let app: ReturnType<typeof createServer>;
let h2app: http2.Http2Server;
let echo: ReturnType<typeof createTcpServer>;
/** How each echo connection ended, by the first word it received: 'end' or 'reset'. */
const echoEnds = new Map<string, string>();
let api: ProxyProcess;
let web: ProxyProcess;
const webAgent = new Agent({ keepAlive: true, maxSockets: 1 });

/** One request through web's outbound listener (the keep-alive pair web → api). */
function viaWeb(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.ports.get('outbound/api')!, path: '/x', agent: webAgent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A workload of its own (no `svid fetch` start: the token test runs that command), used straight against api. */
const fetchSvid = (id: string) => joinTokenSvid(cp, bundlePem, id);
const ban = (kind: 'spiffe_id' | 'serial', value: string) => setBan(cp.dataDir, 'ban', kind, value);
const lift = (kind: 'spiffe_id' | 'serial', value: string) => setBan(cp.dataDir, 'lift', kind, value);

function directAgent(svid: ClientSvid): HttpsAgent {
  return new HttpsAgent({ keepAlive: true, maxSockets: 1, key: svid.keyPem, cert: svid.chainPem, ca: bundlePem, checkServerIdentity: () => undefined });
}

/** One request straight to api's inbound mTLS listener; resolves with the status and the connection used. */
function direct(agent: HttpsAgent): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: api.ports.get('inbound/app')!, path: '/x', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, socket: req.socket! }));
    });
    req.on('error', reject);
    req.end();
  });
}

const refused = (p: Promise<unknown>) => p.then(() => false, () => true);

/** On cp's data dir; each subcommand's first use through the binary, later ones `inProcess` (runCli, no node start). */
async function cli(args: string[], inProcess = false): Promise<{ code: number; stdout: string; stderr: string }> {
  return (inProcess ? tesseraInProcess : tessera)([...args, '--data-dir', cp.dataDir]);
}

async function renew(svid: ClientSvid): Promise<grpc.ServiceError | null> {
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  try {
    return (await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}) })).err;
  } finally {
    c.close();
  }
}

/** Opens Config/Watch with this SVID: `first` resolves on the first snapshot, `ended` with the stream's error. */
function openWatch(svid: ClientSvid) {
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  const call = c.config.Watch!({}) as grpc.ClientReadableStream<unknown>;
  const first = new Promise<boolean>((resolve) => {
    call.once('data', () => resolve(true));
    call.once('error', () => resolve(false));
  });
  const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', (e: grpc.ServiceError) => resolve(e)));
  const close = () => {
    call.cancel();
    c.close();
  };
  return { first, ended, close };
}

/** The outcome of a fresh Config/Watch: null after a first snapshot, else the stream's error. */
async function watchOutcome(svid: ClientSvid): Promise<grpc.ServiceError | null> {
  const w = openWatch(svid);
  try {
    return (await w.first) ? null : await w.ended;
  } finally {
    w.close();
  }
}

async function auditEvents(): Promise<Record<string, unknown>[]> {
  return (await readFile(join(cp.dataDir, 'audit.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  h2app = http2.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
  echo = createTcpServer((s) => {
    let tag = '';
    s.on('data', (d: Buffer) => {
      tag ||= d.toString('latin1').split(' ')[0]!;
    });
    s.pipe(s);
    s.on('end', () => echoEnds.set(tag, 'end'));
    s.on('error', (e: NodeJS.ErrnoException) => echoEnds.set(tag, e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  await writeFile(
    join(cp.policiesDir, 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-default }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: ["spiffe://${TD}/ns/default/sa/*"]\n`,
  );
  const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
  // api also runs an edge listener whose clientCa is the mesh bundle: mesh clients arrive there as mesh identities.
  const edgeServer = await fetchSvid(`spiffe://${TD}/ns/default/sa/edge-server`);
  await mkdir(join(dir, 'edge-server'));
  await writeFile(join(dir, 'edge-server', 'svid.pem'), edgeServer.chainPem);
  await writeFile(join(dir, 'edge-server', 'key.pem'), edgeServer.keyPem, { mode: 0o600 });
  const edge = `edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: edge-server/svid.pem\n    keyFile: edge-server/key.pem\n    clientCa: ${join(cp.dataDir, 'bundle.pem')}\n    routes: [{ host: "*", pathPrefix: /, upstream: 127.0.0.1:${port(app)}, unsafePlaintext: true }]\n`;
  api = await startAttestedProxy(
    cp,
    dir,
    'api',
    API,
    `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${port(app)} }\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${port(h2app)}, protocol: http2 }\n  - { name: tcp, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${port(echo)}, protocol: tcp }\n${edge}`,
  );
  web = await startAttestedProxy(
    cp,
    dir,
    'web',
    WEB,
    `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n  - { name: tcp, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/tcp')}, spiffeId: ${API}, protocol: tcp }\n`,
  );
  await until('the policy reached api', async () => (await viaWeb()) === 200, 15_000);
}, 90_000);

afterAll(async () => {
  webAgent.destroy();
  await web?.stop();
  await api?.stop();
  await cp?.stop();
  app?.close();
  h2app?.close();
  echo?.close();
  await cleanup?.();
});

describe('revocation', () => {
  test('banning the caller ID closes its open connections and refuses new ones within seconds; renewal and watch are refused; lift restores it', async () => {
    const cliSvid = await fetchSvid(CLI);
    const cliAgent = directAgent(cliSvid);
    try {
      // Two keep-alive connections into api: web's pooled one (through the pair) and one of our own.
      expect(await viaWeb()).toBe(200);
      const first = await direct(cliAgent);
      expect(first.status).toBe(200);
      const openConn = first.socket;
      let closedAt = 0;
      openConn.once('close', () => {
        closedAt = Date.now();
      });
      const m0 = await metricsText(api.admin);
      const liveWatch = openWatch(cliSvid);
      expect(await liveWatch.first).toBe(true);

      const banned = await cli(['revoke', 'id', '--spiffe-id', CLI, '--reason', 'key leaked']);
      expect(banned.code, banned.stderr).toBe(0);
      expect(banned.stdout).toBe(`banned ${CLI}\n`);
      const bannedAt = Date.now();
      await until('the open connection of the banned caller is closed by api', () => closedAt > 0, PROPAGATION_MS, 50);
      expect(closedAt - bannedAt).toBeLessThan(PROPAGATION_MS);
      expect(await refused(direct(cliAgent))).toBe(true);
      const shown = (await (await fetch(`http://127.0.0.1:${api.admin}/config`)).json()) as { denyList: { spiffeIds: string[]; serials: string[] } };
      expect(shown.denyList).toEqual({ spiffeIds: [CLI], serials: [] });
      // Only the banned ID: web's traffic through the pair goes on.
      expect(await viaWeb()).toBe(200);
      const m1 = await metricsText(api.admin);
      expect(sumSeries(m1, 'tessera_connections_revoked_total', { direction: 'inbound' }) - sumSeries(m0, 'tessera_connections_revoked_total', { direction: 'inbound' })).toBe(1);
      expect(sumSeries(m1, 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'revoked' })).toBeGreaterThanOrEqual(1);

      const renewal = await renew(cliSvid);
      expect(renewal?.code).toBe(7); // PERMISSION_DENIED
      expect(errorCode(renewal)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
      // The watch it held open is ended by the ban; a new one is refused.
      expect(errorCode(await liveWatch.ended)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
      liveWatch.close();
      expect(errorCode(await watchOutcome(cliSvid))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
      // A new token for a banned ID is refused at once, not at attestation.
      const tok = await cli(['token', 'create', '--spiffe-id', CLI]);
      expect(tok.code).toBe(1);
      expect(tok.stderr).toContain('TESSERA_ERR_REVOCATION_ID_BANNED');

      const list = JSON.parse((await cli(['revoke', 'list', '--json'])).stdout) as { kind: string; value: string; reason: string }[];
      expect(list).toEqual([expect.objectContaining({ kind: 'spiffe_id', value: CLI, reason: 'key leaked' })]);

      const lifted = await cli(['revoke', 'lift', '--spiffe-id', CLI]);
      expect(lifted.code, lifted.stderr).toBe(0);
      await until('api accepts the caller again', async () => !(await refused(direct(cliAgent))), PROPAGATION_MS, 100);
      expect(await renew(cliSvid)).toBeNull();
      expect(await watchOutcome(cliSvid)).toBeNull();
      expect(JSON.parse((await cli(['revoke', 'list', '--json'], true)).stdout)).toEqual([]);
      const again = await cli(['revoke', 'lift', '--spiffe-id', CLI], true);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('TESSERA_ERR_REVOCATION_NOT_FOUND');
    } finally {
      cliAgent.destroy();
    }
  }, 60_000);

  test('banning the ID of the caller proxy cuts the keep-alive pair; lifting it lets traffic flow again', async () => {
    expect(await viaWeb()).toBe(200);
    const before = sumSeries(await metricsText(api.admin), 'tessera_connections_revoked_total', { direction: 'inbound' });
    await ban('spiffe_id', WEB);
    await until('api closed the pooled connection from web', async () => sumSeries(await metricsText(api.admin), 'tessera_connections_revoked_total', { direction: 'inbound' }) > before, PROPAGATION_MS, 100);
    expect(await viaWeb()).toBeGreaterThanOrEqual(500);
    // Every peer refuses web now: its stream's refusal makes it renew at once, that renewal is refused, and it says
    // so in /ready (audit 53b F5: it stayed ready until its SVID expired, up to svid.ttl).
    const ready = async () => {
      const res = await fetch(`http://127.0.0.1:${web.admin}/ready`);
      return { status: res.status, reason: ((await res.json()) as { reason?: string }).reason ?? '' };
    };
    await until('web is not ready, its SVID revoked', async () => (await ready()).reason.includes('svid revoked by the control plane'), PROPAGATION_MS, 100);
    expect((await ready()).status).toBe(503);
    await lift('spiffe_id', WEB);
    await until('traffic through the pair flows again', async () => (await viaWeb()) === 200, PROPAGATION_MS, 100);
    await until('web is ready again (renewed after the lift)', async () => (await ready()).status === 200, 30_000, 200);
  }, 60_000);

  test('a ban closes the banned peer\'s open connections on every inbound protocol (HTTP/1.1, HTTP/2, TCP) and refuses new ones', async () => {
    const MULTI = `spiffe://${TD}/ns/default/sa/multi`;
    const svid = await fetchSvid(MULTI);
    const tlsOpts = { host: '127.0.0.1', key: svid.keyPem, cert: svid.chainPem, ca: bundlePem, checkServerIdentity: () => undefined };
    const h2Get = (session: http2.ClientHttp2Session) =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': '/x' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        // A refused peer's TLS connection is closed before node:http2 writes anything: the stream just closes.
        req.on('close', () => reject(new Error('closed without a response')));
        req.resume();
        req.end();
      });
    const h2Open = () => {
      const session = http2.connect(`https://127.0.0.1:${api.ports.get('inbound/h2')}`, tlsOpts);
      session.on('error', () => undefined);
      return session;
    };
    /** A TCP connection through api's tcp listener; resolves once the echo came back (or rejects if closed first). */
    const tcpOpen = (tag = 'ping') =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ ...tlsOpts, port: api.ports.get('inbound/tcp')! }, () => s.write(`${tag} upload`));
        s.once('data', () => resolve(s));
        s.once('close', () => reject(new Error('closed before the echo')));
        s.on('error', () => undefined);
      });
    const agent = directAgent(svid);
    const h2 = h2Open();
    try {
      const h1 = await direct(agent);
      expect(h1.status).toBe(200);
      expect(await h2Get(h2)).toBe(200);
      const tcp = await tcpOpen('banned-tunnel');
      const closed = { h1: false, h2: false, tcp: false };
      h1.socket.once('close', () => (closed.h1 = true));
      h2.once('close', () => (closed.h2 = true));
      tcp.once('close', () => (closed.tcp = true));
      const tcpEnd = new Promise<string>((resolve) => {
        tcp.once('end', () => resolve('end'));
        tcp.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
      });
      const before = sumSeries(await metricsText(api.admin), 'tessera_connections_revoked_total', { direction: 'inbound' });

      await ban('spiffe_id', MULTI);
      await until('all three connections are closed', () => closed.h1 && closed.h2 && closed.tcp, PROPAGATION_MS, 50);
      // The tunnel is cut on both legs, not ended: before 2026-12-06 each got a FIN (the app took the banned peer's
      // half-sent upload as complete) — the app's leg because relay() read the cut leg's close as orderly.
      expect(await tcpEnd).toBe('error ECONNRESET');
      await until('the app saw how the tunnel ended', () => echoEnds.has('banned-tunnel'), 5_000, 20);
      expect(echoEnds.get('banned-tunnel')).toBe('reset');
      expect(sumSeries(await metricsText(api.admin), 'tessera_connections_revoked_total', { direction: 'inbound' }) - before).toBe(3);
      expect(await refused(direct(agent))).toBe(true);
      expect(await refused(tcpOpen())).toBe(true);
      const again = h2Open();
      try {
        expect(await refused(h2Get(again))).toBe(true);
      } finally {
        again.destroy();
      }
      await lift('spiffe_id', MULTI);
      await until('api accepts the peer again', async () => !(await refused(tcpOpen().then((s) => s.destroy()))), PROPAGATION_MS, 100);
    } finally {
      agent.destroy();
      h2.destroy();
    }
  }, 60_000);

  test('a banned mesh ID arriving at an edge listener (clientCa = the mesh bundle) is refused there too', async () => {
    const id = `spiffe://${TD}/ns/default/sa/edge-client`;
    const svid = await fetchSvid(id);
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, key: svid.keyPem, cert: svid.chainPem, rejectUnauthorized: false });
    const viaEdge = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: api.ports.get('edge/public')!, path: '/x', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await viaEdge()).toBe(200);
      await ban('spiffe_id', id);
      // The open connection's next request is refused, then new handshakes are.
      await until('the edge refuses the banned client', async () => (await viaEdge().catch(() => 0)) !== 200, PROPAGATION_MS, 100);
      agent.destroy();
      expect(await refused(viaEdge())).toBe(true);
      const m = await metricsText(api.admin);
      expect(sumSeries(m, 'tessera_tls_handshakes_total', { direction: 'edge', result: 'failure', reason: 'revoked' })).toBeGreaterThanOrEqual(1);
      await lift('spiffe_id', id);
      await until('the edge accepts the client again', async () => (await viaEdge().catch(() => 0)) === 200, PROPAGATION_MS, 100);
    } finally {
      agent.destroy();
    }
  });

  test('a serial ban stops that one SVID; another SVID of the same ID still works', async () => {
    const old = await fetchSvid(CLI);
    const fresh = await fetchSvid(CLI);
    const oldAgent = directAgent(old);
    const freshAgent = directAgent(fresh);
    try {
      expect((await direct(oldAgent)).status).toBe(200);
      // A serial cut short (as `tessera up` once printed them) matches no SVID: refused, nothing banned.
      const cut = await cli(['revoke', 'serial', '--serial', old.serial.slice(0, 12)], true);
      expect(cut.code).toBe(1);
      expect(cut.stderr).toContain('TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL');
      expect(cut.stderr).toContain('tessera certs list');
      const listed = await adminRequest<{ value: string }[]>(cp.dataDir, 'GET', '/v1/revocations');
      expect(listed.map((b) => b.value)).not.toContain(old.serial.slice(0, 12).replace(/^0+/, ''));
      // The operator types the serial as tools print it: upper case, with colons.
      const colons = old.serial.toUpperCase().match(/../g)!.join(':');
      const r = await cli(['revoke', 'serial', '--serial', colons, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'serial', value: old.serial, created: true });
      await until('api refuses the banned SVID', () => refused(direct(oldAgent)), PROPAGATION_MS, 100);
      expect((await direct(freshAgent)).status).toBe(200);
      expect(errorCode(await renew(old))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
      expect(await renew(fresh)).toBeNull();
      await lift('serial', old.serial);
    } finally {
      oldAgent.destroy();
      freshAgent.destroy();
    }
  }, 60_000);

  test('a serial ban reaches the SVID renewed from it before the ban (a thief who renewed): listed, refused by proxies, cannot renew', async () => {
    const stolen = await fetchSvid(CLI);
    // The thief renews with the stolen SVID before anyone notices: a new serial, a key of its own.
    const key = generateKeyPair();
    const c = controlPlaneClients(cp.grpc, bundlePem, stolen);
    const answer = await signSvid(c.identity, { csr: await createCsr(key, {}) }).finally(() => c.close());
    expect(answer.err).toBeNull();
    const thief: ClientSvid = { keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chainPem: answer.res!.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join('') };
    const thiefAgent = directAgent(thief);
    try {
      expect((await direct(thiefAgent)).status).toBe(200);
      thiefAgent.destroy();
      const r = await cli(['revoke', 'serial', '--serial', stolen.serial], true);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`banned serial ${answer.res!.serial} (renewed from it)`);
      const again = directAgent(thief);
      try {
        await until('api refuses the renewed SVID', () => refused(direct(again)), PROPAGATION_MS, 100);
      } finally {
        again.destroy();
      }
      expect(errorCode(await renew(thief))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
      expect((await cli(['revoke', 'list'], true)).stdout).toContain(`renewed from banned serial ${stolen.serial}`);
      // Lifting the stolen serial leaves its renewal's ban, and says so.
      const lifted = await cli(['revoke', 'lift', '--serial', stolen.serial], true);
      expect(lifted.stdout).toContain(`serial ${answer.res!.serial}, renewed from it, stays banned`);
    } finally {
      thiefAgent.destroy();
      // Either may be lifted already (NOT_FOUND then): only what is left is lifted.
      for (const serial of [stolen.serial, answer.res!.serial]) await lift('serial', serial).catch(() => undefined);
    }
  }, 60_000);

  test('banning an upstream ID makes the client side refuse it and close its pooled connection and cut its tunnel (a reset both ways)', async () => {
    expect(await viaWeb()).toBe(200);
    // A TCP tunnel through web's tcp listener to api, its upload under way.
    const tunnel = connect(web.ports.get('outbound/tcp')!, '127.0.0.1');
    tunnel.on('error', () => undefined);
    const tunnelEnd = new Promise<string>((resolve) => {
      tunnel.once('end', () => resolve('end'));
      tunnel.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    });
    tunnel.write('upstream-banned upload');
    await new Promise((r) => tunnel.once('data', r));
    const m0 = await metricsText(web.admin);
    await ban('spiffe_id', API);
    await until('web closed its pooled connection to api', async () => sumSeries(await metricsText(web.admin), 'tessera_connections_revoked_total', { direction: 'outbound' }) > sumSeries(m0, 'tessera_connections_revoked_total', { direction: 'outbound' }), PROPAGATION_MS, 100);
    // Before 2026-12-06 web closed the tunnel's mTLS connection with a FIN (the app behind api read the end of the
    // upload) and passed that close on to its client as a FIN too.
    expect(await tunnelEnd).toBe('error ECONNRESET');
    await until('the app saw how the tunnel ended', () => echoEnds.has('upstream-banned'), 5_000, 20);
    expect(echoEnds.get('upstream-banned')).toBe('reset');
    tunnel.destroy();
    expect(await viaWeb()).toBeGreaterThanOrEqual(500);
    const m1 = await metricsText(web.admin);
    expect(sumSeries(m1, 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure', reason: 'revoked' })).toBeGreaterThan(sumSeries(m0, 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure', reason: 'revoked' }));
    await lift('spiffe_id', API);
    await until('web reaches api again', async () => (await viaWeb()) === 200, PROPAGATION_MS, 100);
  }, 40_000);

  test('a revoked join token cannot attest, named by value or by the id in the audit log; a used one cannot be revoked', async () => {
    const late = `spiffe://${TD}/ns/default/sa/late`;
    const byValue = await createJoinToken(cp.dataDir, late);
    const byId = await createJoinToken(cp.dataDir, late);
    const created = (await auditEvents()).filter((e) => e['event'] === 'token.created' && e['spiffeId'] === late);
    const tokenId = String(created.at(-1)!['attestedAs']).replace('join_token:', '');
    const r1 = await cli(['revoke', 'token', '--token', byValue, '--reason', 'pasted in a ticket']);
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await cli(['revoke', 'token', '--token-id', tokenId], true);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(`revoked join token ${tokenId}`);
    // `svid fetch` with the first, the request it makes (SignSvid with a join token) with the second.
    const f = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', join(cp.dataDir, 'bundle.pem'), '--join-token', byValue, '--out', join(dir, 'late')]);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED');
    expect(errorCode((await joinTokenSign(cp, bundlePem, byId)).err)).toBe('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED');
    const used = await createJoinToken(cp.dataDir, late);
    expect((await joinTokenSign(cp, bundlePem, used)).err).toBeNull();
    const refusedRevoke = await cli(['revoke', 'token', '--token', used], true);
    expect(refusedRevoke.code).toBe(1);
    expect(refusedRevoke.stderr).toContain('TESSERA_ERR_REVOCATION_TOKEN_USED');
    const usage = await cli(['revoke', 'token'], true);
    expect(usage.code).toBe(2);
  }, 40_000);

  test('every action and every refusal is in the audit log', async () => {
    const events = await auditEvents();
    const has = (pred: (e: Record<string, unknown>) => boolean) => events.some(pred);
    expect(has((e) => e['event'] === 'revocation.banned' && e['spiffeId'] === CLI && e['reason'] === 'key leaked' && typeof e['createdBy'] === 'string')).toBe(true);
    expect(has((e) => e['event'] === 'revocation.lifted' && e['spiffeId'] === CLI)).toBe(true);
    expect(has((e) => e['event'] === 'revocation.banned' && e['kind'] === 'serial' && e['spiffeId'] === CLI)).toBe(true);
    expect(has((e) => e['event'] === 'svid.refused' && e['code'] === 'TESSERA_ERR_REVOCATION_ID_BANNED' && e['spiffeId'] === CLI)).toBe(true);
    expect(has((e) => e['event'] === 'svid.refused' && e['code'] === 'TESSERA_ERR_REVOCATION_SERIAL_BANNED')).toBe(true);
    expect(has((e) => e['event'] === 'config.watch_refused' && e['code'] === 'TESSERA_ERR_REVOCATION_ID_BANNED')).toBe(true);
    // Counted by its code, not as an attestation failure: the caller's SVID was good, its ID banned.
    expect(sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), 'tessera_watch_refusals_total', { service: 'config', code: 'TESSERA_ERR_REVOCATION_ID_BANNED' })).toBeGreaterThanOrEqual(1);
    expect(has((e) => e['event'] === 'token.revoked' && e['reason'] === 'pasted in a ticket')).toBe(true);
    expect(has((e) => e['event'] === 'svid.refused' && e['code'] === 'TESSERA_ERR_ATTESTATION_TOKEN_REVOKED')).toBe(true);
  });

  test('bans are durable: after a control-plane restart they are listed and enforced', async () => {
    const gone = `spiffe://${TD}/ns/default/sa/gone`;
    const svid = await fetchSvid(gone);
    await ban('spiffe_id', gone);
    expect(await cp.stop()).toBe(0);
    cp = await startControlPlaneProcess(cp.dir, cp.configFile);
    const list = JSON.parse((await cli(['revoke', 'list', '--json'], true)).stdout) as { value: string }[];
    expect(list.map((b) => b.value)).toContain(gone);
    expect(errorCode(await renew(svid))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
  }, 40_000);
});
