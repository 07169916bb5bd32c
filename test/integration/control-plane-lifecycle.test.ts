// The control plane process over its life: config errors, file modes, one process per data dir, CA rotation
// (prepare → activate → retire), restart keeping the same CA and tokens, graceful SIGTERM with a Watch open.
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeCertificates } from '../../common/pki/pem.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { admissionReview, appPod, servingPki } from '../helpers/injector-fixtures.js';
import { type RunningControlPlane, TD, controlPlaneClients, createJoinToken, joinTokenSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
let dir: string;
let cleanup: () => Promise<void>;
let config: string;
let cp: RunningControlPlane | undefined;
/** What the control plane stopped by the SIGTERM test had made: the restart test checks the next start keeps it. */
let beforeStop: { status: CaStatus; token: string } | undefined;

const fingerprints = async (file: string) => decodeCertificates(await readFile(file)).map((d) => new X509Certificate(d).fingerprint256);

/**
 * An SVID for WEB written as `svid fetch --out` writes it (key.pem, svid.pem), by the same SignSvid request in-process:
 * the command is tested in control-plane-issuance.test.ts and still runs here after the restart.
 */
async function fetchSvid(running: RunningControlPlane, out: string): Promise<string> {
  const svid = await joinTokenSvid(running, await readFile(join(running.dataDir, 'bundle.pem'), 'utf8'), WEB);
  await mkdir(join(dir, out));
  await writeFile(join(dir, out, 'key.pem'), svid.keyPem, { mode: 0o600 });
  await writeFile(join(dir, out, 'svid.pem'), svid.chainPem);
  return join(dir, out, 'svid.pem');
}

type CaStatus = { signingAuthority: string; authorities: { id: string; state: string; liveSvids: number }[] };

/** `ca status --json`'s answer, asked of admin.sock directly (the command is tested in control-plane-issuance.test.ts). */
const caStatus = (running: RunningControlPlane) => adminRequest<CaStatus>(running.dataDir, 'GET', '/v1/ca');

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  config = await writeControlPlaneConfig(dir);
});
afterAll(async () => {
  await cp?.stop();
  await cleanup();
});

// A refused config is told before the command loads its servers or a logger (cli/run/control-plane.ts): the first case
// runs the built binary, the others runCli in-process (tesseraInProcess), the same code without a node start each.
describe('config errors', () => {
  test.each([
    ['an unknown key', 'listn: 127.0.0.1:0\n', 'listn', ':7', tessera],
    ['a bad duration', 'svid: { ttl: 5x }\n', 'svid.ttl', ':7', tesseraInProcess],
    ['ttl above maxTtl', 'svid:\n  ttl: 2h\n  maxTtl: 1h\n', 'svid.ttl', ':8', tesseraInProcess],
    ['ttl under twice the backdate (proxies would renew in a loop)', 'svid:\n  ttl: 40s\n', 'svid.ttl', ':8', tesseraInProcess],
  ])('%s: exit 1, file:line and key on stderr, no stack trace', async (_name, extra, key, line, cli) => {
    const file = join(dir, `bad-${key}.yaml`);
    await writeFile(file, `${(await readFile(config, 'utf8')).trimEnd()}\n${extra}`);
    const r = await cli(['control-plane', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}${line}`);
    expect(r.stderr).toContain(key);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  test('a missing config file: exit 1, named', async () => {
    const r = await tesseraInProcess(['control-plane', '--config', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_CONFIG_UNREADABLE');
    expect(r.stderr).toContain('nope.yaml');
  });

  test('no --config: usage error, exit 2', async () => {
    expect((await tesseraInProcess(['control-plane'])).code).toBe(2);
  });
});

describe('a running control plane', () => {
  test('keys are 0600, the data dir and admin.sock owner-only, bundle.pem public', async () => {
    cp = await startControlPlaneProcess(dir, config);
    // The injector is off unless the config has an enabled injector block.
    expect(cp.stdout()).not.toContain(' injector ');
    const caDir = join(cp.dataDir, 'ca');
    const keys = (await readdir(caDir)).filter((n) => n.endsWith('.key'));
    expect(keys.length).toBe(2);
    for (const k of keys) expect((await stat(join(caDir, k))).mode & 0o777).toBe(0o600);
    expect((await stat(cp.dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(cp.dataDir, 'admin.sock'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(cp.dataDir, 'bundle.pem'))).mode & 0o777).toBe(0o644);
  });

  test('a second control plane on the same data dir is refused', async () => {
    const r = await tessera(['control-plane', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_CP_ALREADY_RUNNING');
    expect(cp!.proc.exitCode).toBeNull();
  });

  test('CA rotation: prepare adds to the bundle, activate switches the signer, retire waits for live SVIDs', async () => {
    const running = cp!;
    const bundleFile = join(running.dataDir, 'bundle.pem');
    const oldSvid = await fetchSvid(running, 'before-rotation');
    const before = await caStatus(running);
    const c = controlPlaneClients(running.grpc, await readFile(bundleFile, 'utf8'), {
      keyPem: await readFile(join(dir, 'before-rotation', 'key.pem'), 'utf8'),
      chainPem: await readFile(oldSvid, 'utf8'),
    });
    const seen: { bundles: { x509_authorities: Buffer[] }[] }[] = [];
    const call = c.config.Watch!({}) as grpc.ClientReadableStream<(typeof seen)[number]>;
    call.on('data', (m: (typeof seen)[number]) => seen.push(m));
    call.on('error', () => {});
    try {
      const prepared = await tessera(['ca', 'prepare', '--data-dir', running.dataDir, '--json']);
      expect(prepared.code, prepared.stderr).toBe(0);
      const newId = (JSON.parse(prepared.stdout) as { prepared: string }).prepared;
      expect((await fingerprints(bundleFile)).length).toBe(2);
      const until = Date.now() + 10_000;
      while (!seen.some((s) => s.bundles[0]!.x509_authorities.length === 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      expect(seen.some((s) => s.bundles[0]!.x509_authorities.length === 2)).toBe(true);
      expect((await caStatus(running)).signingAuthority).toBe(before.signingAuthority);

      const activated = await tessera(['ca', 'activate', '--data-dir', running.dataDir]);
      expect(activated.code, activated.stderr).toBe(0);
      const after = await caStatus(running);
      expect(after.signingAuthority).toBe(newId);
      expect(after.authorities.find((a) => a.id === before.signingAuthority)?.state).toBe('retired');
      const certs = (await (await fetch(`http://${running.admin}/certs`)).json()) as { signingAuthority: string; servedAuthority: string };
      expect(certs.signingAuthority).toBe(newId);
      // Its own SVID stays of the retired authority while that is in the bundle: a proxy that missed the prepare
      // still verifies the control plane, reconnects and gets the new root (audit 55b F1). `ca status` says so.
      expect(certs.servedAuthority).toBe(before.signingAuthority);
      const text = await tessera(['ca', 'status', '--data-dir', running.dataDir]);
      expect(text.stdout).toContain(`signing authority ${newId}; the control plane's own SVID from ${before.signingAuthority} (retired) until it is removed`);

      const newSvid = await fetchSvid(running, 'after-rotation');
      for (const svid of [oldSvid, newSvid]) {
        const v = await run('openssl', ['verify', '-CAfile', bundleFile, '-untrusted', svid, svid]);
        expect(v.stdout + v.stderr, svid).toContain(': OK');
      }
      const newRoot = decodeCertificates(await readFile(join(running.dataDir, 'ca', `${newId}-root.crt`)))[0]!;
      const only = join(dir, 'new-root.pem');
      await writeFile(only, `-----BEGIN CERTIFICATE-----\n${newRoot.toString('base64')}\n-----END CERTIFICATE-----\n`);
      expect((await run('openssl', ['verify', '-CAfile', only, '-untrusted', newSvid, newSvid])).code).toBe(0);
      expect((await run('openssl', ['verify', '-CAfile', only, '-untrusted', oldSvid, oldSvid])).code).not.toBe(0);

      const retire = await tessera(['ca', 'retire', '--data-dir', running.dataDir]);
      expect(retire.code).toBe(1);
      expect(retire.stderr).toContain('TESSERA_ERR_CA_AUTHORITY_IN_USE');
      const active = await tesseraInProcess(['ca', 'retire', '--data-dir', running.dataDir, '--authority', newId]);
      expect(active.stderr).toContain('TESSERA_ERR_CA_AUTHORITY_ACTIVE');
      expect((await fingerprints(bundleFile)).length).toBe(2);
    } finally {
      call.cancel();
      c.close();
    }
  });

  test('SIGTERM with a Watch stream open: the stream ends, the process exits 0 within the drain deadline', async () => {
    const running = cp!;
    const svid = join(dir, 'after-rotation');
    const c = controlPlaneClients(running.grpc, await readFile(join(running.dataDir, 'bundle.pem'), 'utf8'), {
      keyPem: await readFile(join(svid, 'key.pem'), 'utf8'),
      chainPem: await readFile(join(svid, 'svid.pem'), 'utf8'),
    });
    let got = 0;
    let ended = false;
    const call = c.config.Watch!({}) as grpc.ClientReadableStream<unknown>;
    call.on('data', () => got++);
    call.on('error', () => {
      ended = true;
    });
    call.on('end', () => {
      ended = true;
    });
    try {
      const until = Date.now() + 10_000;
      while (got === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      expect(got).toBeGreaterThan(0);
      beforeStop = { status: await caStatus(running), token: await createJoinToken(running.dataDir, WEB) };
      const t0 = Date.now();
      expect(await running.stop()).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(ended).toBe(true);
      expect(running.stdout()).toContain('tessera control-plane: ready\n');
    } finally {
      c.close();
    }
  });

  // The process before the restart is the one the SIGTERM test stopped (its CA status and a token it made, taken just
  // before): one start fewer than starting and stopping another for this test.
  test('a restart keeps the same CA (bundle fingerprints, authorities) and the tokens it made', async () => {
    const bundleFile = join(dir, 'data', 'bundle.pem');
    const before = await fingerprints(bundleFile);
    const { status, token } = beforeStop!;
    cp = await startControlPlaneProcess(dir, config);
    expect(await fingerprints(bundleFile)).toEqual(before);
    const again = await caStatus(cp);
    expect(again.signingAuthority).toBe(status.signingAuthority);
    expect(again.authorities.map((a) => [a.id, a.state])).toEqual(status.authorities.map((a) => [a.id, a.state]));
    const f = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', bundleFile, '--join-token', token, '--out', join(dir, 'after-restart')]);
    expect(f.code, f.stderr).toBe(0);
  });
});

describe('the optional injector block', () => {
  test('when enabled the webhook serves pods the live bundle, and a bad key names its line', async () => {
    const { dir: d, cleanup: clean } = await makeTempDir();
    let injected: RunningControlPlane | undefined;
    try {
      const pki = await servingPki(['localhost']);
      await writeFile(join(d, 'webhook.pem'), pki.certPem);
      await writeFile(join(d, 'webhook.key'), pki.keyPem, { mode: 0o600 });
      const block = (cpu: string) =>
        ['injector:', '  enabled: true', '  listen: 127.0.0.1:0', '  certFile: webhook.pem', '  keyFile: webhook.key', '  proxyImage: ghcr.io/example/tessera:0.1.0',
          '  controlPlaneAddress: tessera-control-plane.tessera-system.svc:8443', `  resources: { requests: { cpu: ${cpu} } }`].join('\n');
      const bad = await writeControlPlaneConfig(d, block('lots'));
      const refused = await tesseraInProcess(['control-plane', '--config', bad]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${bad}:14: injector.resources.requests.cpu`);
      const good = await writeControlPlaneConfig(d, block('50m'));
      injected = await startControlPlaneProcess(d, good);
      const m = / injector (\S+)/.exec(injected.stdout());
      expect(m).not.toBeNull();
      const port = Number(m![1]!.split(':').at(-1));
      const body = JSON.stringify(admissionReview(appPod()));
      const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, servername: 'localhost', path: '/inject', method: 'POST', ca: pki.caPem, headers: { 'content-type': 'application/json' } }, (r) => {
          let text = '';
          r.on('data', (c: Buffer) => {
            text += c.toString();
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
      expect(res.status).toBe(200);
      const review = JSON.parse(res.text) as { response: { allowed: boolean; patch?: string } };
      expect(review.response.allowed).toBe(true);
      const patch = Buffer.from(review.response.patch!, 'base64').toString('utf8');
      const root = decodeCertificates(await readFile(join(injected.dataDir, 'bundle.pem')))[0]!.toString('base64');
      // The bootstrap bundle travels as an annotation (PEM, JSON-escaped): its base64 body is in the patch.
      expect(patch.replaceAll('\\n', '')).toContain(root.slice(0, 64));
    } finally {
      expect(await injected?.stop()).toBe(0);
      await clean();
    }
  });
});
