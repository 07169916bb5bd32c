// The real `tessera control-plane` process issuing SVIDs: token create → svid fetch → openssl verify, and every
// refusal (reused, expired or foreign-ID token, CA rights), the inventory, CA status, and garbage on the gRPC port.
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { COMMANDS } from '../../cli/commands/index.js';
import { runCli } from '../../cli/run-cli.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { realTimers } from '../../shared-io/timers.js';
import { type RunningControlPlane, TD, controlPlaneClients, createJoinToken, errorCode, joinTokenSvid, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const API = `spiffe://${TD}/ns/default/sa/api`;
let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundleFile: string;

/** `tessera token create`, checked: the first test's token. The others are set-up, asked of admin.sock (`token`). */
async function cliToken(id: string, ttl = '10m'): Promise<string> {
  const r = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', id, '--ttl', ttl]);
  expect(r.code, r.stderr).toBe(0);
  const t = r.stdout.trim();
  expect(r.stdout).toBe(`${t}\n`);
  expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return t;
}

/** A join token as `token create` asks admin.sock for it, without a node start per token. */
const token = (id: string, ttlMs?: number): Promise<string> => createJoinToken(cp.dataDir, id, ttlMs);

function svidFetch(tok: string, out: string) {
  return tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', bundleFile, '--join-token', tok, '--out', join(dir, out)]);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  bundleFile = join(cp.dataDir, 'bundle.pem');
});
afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

describe('tessera control-plane issues SVIDs', () => {
  test('token create → svid fetch → openssl verifies the chain against bundle.pem, with the attested ID', async () => {
    const fetched = await svidFetch(await cliToken(WEB), 'web');
    expect(fetched.code, fetched.stderr).toBe(0);
    const summary = JSON.parse(fetched.stdout) as { spiffeId: string; serial: string };
    expect(summary.spiffeId).toBe(WEB);
    const svid = join(dir, 'web', 'svid.pem');
    const v = await run('openssl', ['verify', '-CAfile', bundleFile, '-untrusted', svid, '-purpose', 'sslclient', svid]);
    expect(v.stdout + v.stderr).toContain(': OK');
    expect(v.code).toBe(0);
    const san = await run('openssl', ['x509', '-in', svid, '-noout', '-ext', 'subjectAltName']);
    expect(san.stdout).toContain(`URI:${WEB}`);
    const chain = (await readFile(svid, 'utf8')).match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    expect(chain.length).toBe(2);
    expect((await stat(join(dir, 'web', 'key.pem'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'web', 'bundle.pem'), 'utf8')).toBe(await readFile(bundleFile, 'utf8'));
    const leaf = new X509Certificate(await readFile(svid));
    expect(leaf.serialNumber.toLowerCase()).toBe(summary.serial);

    const listed = await tessera(['certs', 'list', '--data-dir', cp.dataDir, '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { serial: string; spiffeId: string; notBefore: string; notAfter: string }[];
    const row = rows.find((r) => r.serial === summary.serial);
    expect(row?.spiffeId).toBe(WEB);
    expect(row?.notAfter).toBe(leaf.validToDate.toISOString());
    const soon = await tessera(['certs', 'list', '--data-dir', cp.dataDir, '--json', '--expiring-within', '1m']);
    expect((JSON.parse(soon.stdout) as unknown[]).length).toBe(0);
  });

  test('a join token is single-use', async () => {
    const t = await token(WEB);
    expect((await svidFetch(t, 'once')).code).toBe(0);
    const again = await svidFetch(t, 'twice');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TESSERA_ERR_ATTESTATION_TOKEN_USED');
    expect(again.stderr).not.toMatch(/\n\s+at /);
  });

  test('an expired token is refused', async () => {
    const t = await token(WEB, 300);
    const created = Date.now();
    // Poll, bounded: the token must be past its 300 ms life before it is tried.
    while (Date.now() - created < 400) await new Promise((r) => setTimeout(r, 50));
    const r = await svidFetch(t, 'expired');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED');
  });

  test('an unknown token is refused', async () => {
    const r = await svidFetch('x'.repeat(43), 'unknown');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN');
  });

  test('a token for ID A with a CSR asking for ID B is refused, and the token is not spent by it', async () => {
    const t = await token(WEB);
    const bundle = await readFile(bundleFile, 'utf8');
    const c = controlPlaneClients(cp.grpc, bundle);
    try {
      const key = generateKeyPair();
      const foreign = await signSvid(c.identity, { csr: await createCsr(key, { uriSans: [API] }), join_token: t });
      expect(foreign.err?.code).toBe(3); // INVALID_ARGUMENT
      expect(errorCode(foreign.err)).toBe('TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN');
      const dns = await signSvid(c.identity, { csr: await createCsr(key, { uriSans: [WEB], dnsSans: ['evil.example'] }), join_token: t });
      expect(errorCode(dns.err)).toBe('TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN');
      const own = await signSvid(c.identity, { csr: await createCsr(key, { uriSans: [WEB] }), join_token: t });
      expect(own.err).toBeNull();
      expect(own.res?.spiffe_id).toBe(WEB);
      expect(new X509Certificate(own.res!.svid_chain[0]!).subjectAltName).toBe(`URI:${WEB}`);
    } finally {
      c.close();
    }
  });

  test('a CSR asking for CA rights is refused', async () => {
    const t = await token(WEB);
    const c = controlPlaneClients(cp.grpc, await readFile(bundleFile, 'utf8'));
    try {
      const r = await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), { requestCa: true }), join_token: t });
      expect(r.err?.code).toBe(3);
      expect(errorCode(r.err)).toBe('TESSERA_ERR_ISSUANCE_CSR_REQUESTS_CA');
      const junk = await signSvid(c.identity, { csr: Buffer.from('not a csr'), join_token: t });
      expect(errorCode(junk.err)).toBe('TESSERA_ERR_CSR_MALFORMED');
    } finally {
      c.close();
    }
  });

  test('nobody can get a token for the control plane ID or another trust domain', async () => {
    for (const id of [`spiffe://${TD}/tessera/control-plane`, 'spiffe://other.org/ns/default/sa/web']) {
      const r = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', id]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('TESSERA_ERR_ISSUANCE_RESERVED_ID');
    }
  });

  test('ca status lists the one active authority, whose root is bundle.pem', async () => {
    const r = await tessera(['ca', 'status', '--data-dir', cp.dataDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { trustDomain: string; authorities: { id: string; state: string; rootFingerprint: string }[]; signingAuthority: string };
    expect(s.trustDomain).toBe(TD);
    expect(s.authorities.map((a) => a.state)).toEqual(['active']);
    expect(s.signingAuthority).toBe(s.authorities[0]!.id);
    const root = new X509Certificate(await readFile(bundleFile));
    expect(s.authorities[0]!.rootFingerprint).toBe(root.fingerprint256.replaceAll(':', '').toLowerCase());
    const text = await tessera(['ca', 'status', '--data-dir', cp.dataDir]);
    expect(text.stdout).toContain(`${s.authorities[0]!.id}`);
    expect(text.stdout).toContain('active');
  });

  test('garbage on the gRPC port (plaintext, no ALPN, half a handshake) does not hurt it', async () => {
    const [host, port] = [cp.grpc.split(':')[0]!, Number(cp.grpc.split(':')[1])];
    await new Promise<void>((resolve) => {
      const s = netConnect(port, host, () => s.end(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\xff\xff garbage')));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host, port, rejectUnauthorized: false }, () => s.write('not http/2'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    await new Promise<void>((resolve) => {
      const s = netConnect(port, host, () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
      setTimeout(() => s.destroy(), 100);
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    expect(cp.proc.exitCode).toBeNull();
    // Still issuing: SignSvid with a fresh token (the request `svid fetch` makes, whose command the tests above run).
    expect((await joinTokenSvid(cp, await readFile(bundleFile, 'utf8'), WEB)).chainPem).toContain('BEGIN CERTIFICATE');
    const health = await fetch(`http://${cp.admin}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_grpc_tls_failures_total\{reason="(protocol|alpn)"\} [1-9]/);
  });

  test('admin listener: /ready, /certs name the control plane SVID; /metrics counts issuances; /config shows the effective config', async () => {
    expect((await fetch(`http://${cp.admin}/ready`)).status).toBe(200);
    const certs = (await (await fetch(`http://${cp.admin}/certs`)).json()) as { spiffeId: string; serial: string; bundleFingerprints: string[] };
    expect(certs.spiffeId).toBe(`spiffe://${TD}/tessera/control-plane`);
    expect(certs.bundleFingerprints.length).toBe(1);
    const metrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_issuances_total\{result="issued",attestor="join_token"\} [1-9]/);
    expect(metrics).toMatch(/tessera_issuance_refusals_total\{code="TESSERA_ERR_ATTESTATION_TOKEN_USED"\} [1-9]/);
    const config = (await (await fetch(`http://${cp.admin}/config`)).json()) as { trustDomain: string; dataDir: string };
    expect(config.trustDomain).toBe(TD);
    expect(config.dataDir).toBe(cp.dataDir);
    const audit = await readFile(join(cp.dataDir, 'audit.log'), 'utf8');
    expect(audit).toContain('"event":"svid.issued"');
    expect(audit).toContain('"code":"TESSERA_ERR_ATTESTATION_TOKEN_USED"');
  });
});

describe('operator commands without a running control plane', () => {
  test('token create on a data dir with no admin.sock fails clearly', async () => {
    const r = await tessera(['token', 'create', '--data-dir', join(dir, 'nowhere'), '--spiffe-id', WEB]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_CP_UNREACHABLE');
    expect(r.stderr).toContain('admin.sock');
  });

  test('every command has --help (exit 0) and usage errors exit 2', async () => {
    const cmds = [['control-plane'], ['token', 'create'], ['ca', 'status'], ['ca', 'prepare'], ['ca', 'activate'], ['ca', 'retire'], ['certs', 'list'], ['svid', 'fetch'], ['policy', 'break-glass']];
    // In process (the dispatcher the binary runs), then once through the real binary.
    for (const cmd of cmds) {
      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: () => {}, env: {}, cwd: dir, clock: { nowMs: () => Date.now() }, timers: realTimers, stopSignal: new Promise<NodeJS.Signals>(() => {}) };
      expect(await runCli([...cmd, '--help'], COMMANDS, io), cmd.join(' ')).toBe(0);
      expect(out.join('')).toContain(`Usage: tessera ${cmd.join(' ')}`);
      expect(await runCli([...cmd, '--no-such-flag'], COMMANDS, io), cmd.join(' ')).toBe(2);
    }
    // A value out of the command's range is a usage error too, naming the flag (it was exit 1, the server naming ttlMs).
    const err: string[] = [];
    const io = { stdout: () => {}, stderr: (t: string) => err.push(t), env: {}, cwd: dir, clock: { nowMs: () => Date.now() }, timers: realTimers, stopSignal: new Promise<NodeJS.Signals>(() => {}) };
    expect(await runCli(['token', 'create', '--data-dir', join(dir, 'nowhere'), '--spiffe-id', WEB, '--ttl', '31d'], COMMANDS, io)).toBe(2);
    expect(err.join('')).toContain('--ttl "31d" is out of range: from 1ms to 30d');
    const [help, usage] = await Promise.all([tessera(['token', 'create', '--help']), tessera(['certs', 'list'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: tessera token create');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('tessera certs list: TESSERA_ERR_CLI_USAGE: --data-dir is required');
    // A group with a command it does not have, or none: said so, with the code and the group's commands.
    for (const [argv, said] of [
      [['ca', 'bogus'], 'tessera ca: TESSERA_ERR_CLI_USAGE: unknown command "bogus"'],
      [['ca'], 'tessera ca: TESSERA_ERR_CLI_USAGE: a command is needed'],
      [['nosuchcmd'], 'tessera: TESSERA_ERR_CLI_USAGE: unknown command "nosuchcmd"'],
    ] as const) {
      const e: string[] = [];
      const quiet = { ...io, stderr: (t: string) => e.push(t) };
      expect(await runCli([...argv], COMMANDS, quiet), argv.join(' ')).toBe(2);
      expect(e.join('')).toContain(said);
      if (argv[0] === 'ca') expect(e.join('')).toContain('  ca status ');
    }
  });
});
