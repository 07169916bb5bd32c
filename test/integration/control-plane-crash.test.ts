// kill -9 in the middle of a CA rotation: the real control plane is started with TESSERA_TEST_CRASH_AT (it
// SIGKILLs itself between writing new CA material and writing ca-state.json, or right after the state), an
// operator runs `ca prepare` / `ca activate`, and a plain restart must find a consistent CA: one active
// authority, bundle.pem = the authorities' roots, no stray key files, old SVIDs still verifying, tokens,
// inventory and audit kept, issuance working.
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeCertificates } from '../../common/pki/pem.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { type RunningControlPlane, TD, createJoinToken, joinTokenSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
let dir: string;
let cleanup: () => Promise<void>;
let config: string;
let running: RunningControlPlane | undefined;

interface CaStatus {
  signingAuthority: string;
  authorities: { id: string; state: string; rootFingerprint: string }[];
}

const dataDir = () => join(dir, 'data');
const bundleFile = () => join(dataDir(), 'bundle.pem');

// Status, inventory and tokens straight from admin.sock, as `tessera ca status|certs list|token create` ask for them:
// those commands are tested on their own, and a node start per look (~20 here) is most of this file's CPU.
const caStatus = () => adminRequest<CaStatus>(dataDir(), 'GET', '/v1/ca');
const createToken = () => createJoinToken(dataDir(), WEB);

async function fetchSvid(out: string, tok: string): Promise<{ file: string; serial: string }> {
  const r = await tessera(['svid', 'fetch', '--control-plane', running!.grpc, '--bundle', bundleFile(), '--join-token', tok, '--out', join(dir, out)]);
  expect(r.code, r.stderr).toBe(0);
  return { file: join(dir, out, 'svid.pem'), serial: (JSON.parse(r.stdout) as { serial: string }).serial };
}

/** An SVID issued before the kills, as `svid fetch` writes and prints it, by its request in-process (SignSvid). */
async function issueSvid(out: string): Promise<{ file: string; serial: string }> {
  const svid = await joinTokenSvid(running!, await readFile(bundleFile(), 'utf8'), WEB);
  await mkdir(join(dir, out));
  await writeFile(join(dir, out, 'svid.pem'), svid.chainPem);
  return { file: join(dir, out, 'svid.pem'), serial: svid.serial };
}

async function opensslVerifies(svid: string): Promise<boolean> {
  const v = await run('openssl', ['verify', '-CAfile', bundleFile(), '-untrusted', svid, svid]);
  return v.code === 0 && v.stdout.includes(': OK');
}

/** Waits (bounded) for the child to be gone; returns the signal that ended it. */
async function exited(cp: RunningControlPlane, timeoutMs = 15_000): Promise<NodeJS.Signals | null> {
  const until = Date.now() + timeoutMs;
  while (cp.proc.exitCode === null && cp.proc.signalCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return cp.proc.signalCode;
}

/** The invariants a restart must find, whatever the crash left. Three independent groups, run side by side. */
async function expectConsistent(expected: { states: [string, string][]; signing: string }, before: { file: string; serial: string }): Promise<void> {
  await Promise.all([expectCaState(expected), expectBeforeKept(before), expectIssuance(expected.signing)]);
}

/** The state names the expected authorities, one active; bundle.pem and ca/ hold exactly what it names. */
async function expectCaState(expected: { states: [string, string][]; signing: string }): Promise<void> {
  const s = await caStatus();
  expect(s.authorities.map((a) => [a.id, a.state])).toEqual(expected.states);
  expect(s.signingAuthority).toBe(expected.signing);
  expect(s.authorities.filter((a) => a.state === 'active').length).toBe(1);
  // bundle.pem is exactly the roots of the authorities the state names.
  const published = decodeCertificates(await readFile(bundleFile())).map((d) => new X509Certificate(d).fingerprint256.replaceAll(':', '').toLowerCase());
  expect(published.sort()).toEqual(s.authorities.map((a) => a.rootFingerprint).sort());
  // Every file in ca/ is named by ca-state.json: material from an uncommitted step was swept, none is missing.
  const caDir = join(dataDir(), 'ca');
  const state = JSON.parse(await readFile(join(caDir, 'ca-state.json'), 'utf8')) as {
    authorities: { rootCertFile: string; rootKeyFile: string; intermediates: { certFile: string; keyFile: string }[] }[];
  };
  const named = state.authorities.flatMap((a) => [a.rootCertFile, a.rootKeyFile, ...a.intermediates.flatMap((i) => [i.certFile, i.keyFile])]);
  expect((await readdir(caDir)).sort()).toEqual([...named, 'ca-state.json'].sort());
}

/** What was issued before the crash is still trusted and still in the inventory. */
async function expectBeforeKept(before: { file: string; serial: string }): Promise<void> {
  expect(await opensslVerifies(before.file)).toBe(true);
  const listed = await adminRequest<{ serial: string }[]>(dataDir(), 'GET', '/v1/certs');
  expect(listed.map((c) => c.serial)).toContain(before.serial);
}

/**
 * And issuance works, from the signing authority: SignSvid with a fresh token in-process (the request `svid fetch`
 * makes; the command itself runs before the kills and after the last).
 */
async function expectIssuance(signing: string): Promise<void> {
  const out = join(dir, `after-${Date.now()}`);
  await mkdir(out);
  const fresh = await joinTokenSvid(running!, await readFile(bundleFile(), 'utf8'), WEB);
  await writeFile(join(out, 'svid.pem'), fresh.chainPem);
  expect(await opensslVerifies(join(out, 'svid.pem'))).toBe(true);
  const certs = (await (await fetch(`http://${running!.admin}/certs`)).json()) as { signingAuthority: string };
  expect(certs.signingAuthority).toBe(signing);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  config = await writeControlPlaneConfig(dir);
});
afterAll(async () => {
  await running?.stop();
  await cleanup();
});

describe('kill -9 in the middle of a CA rotation', () => {
  test('at each commit point of prepare and activate, a restart finds a consistent CA and loses nothing', async () => {
    running = await startControlPlaneProcess(dir, config);
    const [before, spare, original] = await Promise.all([issueSvid('before'), createToken(), caStatus()]);
    const oldId = original.signingAuthority;
    expect(await running.stop()).toBe(0);

    let newId = '';
    const steps: { point: string; command: 'prepare' | 'activate'; after: () => { states: [string, string][]; signing: string } }[] = [
      // New key files written, state not: the prepare never happened.
      { point: 'ca-after-material', command: 'prepare', after: () => ({ states: [[oldId, 'active']], signing: oldId }) },
      // State written, process gone before it answered or rewrote bundle.pem: the prepare happened.
      { point: 'ca-after-state', command: 'prepare', after: () => ({ states: [[oldId, 'active'], [newId, 'prepared']], signing: oldId }) },
      // Activation writes no material: killed before the state, nothing changed.
      { point: 'ca-after-material', command: 'activate', after: () => ({ states: [[oldId, 'active'], [newId, 'prepared']], signing: oldId }) },
      { point: 'ca-after-state', command: 'activate', after: () => ({ states: [[oldId, 'retired'], [newId, 'active']], signing: newId }) },
    ];
    // Each restart that checks a step is also the process the next step kills (started with that step's crash point):
    // the hook fires only inside a CA commit, and a restart's own load commits nothing (were it to, this restart would
    // die before its checks and the test fail). So there are five starts after the first rather than eight; the last
    // restart runs without a crash point and is stopped cleanly.
    let doomed = await startControlPlaneProcess(dir, config, { ...process.env, TESSERA_TEST_CRASH_AT: steps[0]!.point });
    for (const [i, step] of steps.entries()) {
      const label = `${step.command} killed at ${step.point}`;
      // The operator's command: the first through the binary, the others runCli in-process (no node start each).
      const r = await (i === 0 ? tessera : tesseraInProcess)(['ca', step.command, '--data-dir', dataDir()]);
      expect(r.code, label).toBe(1);
      expect(r.stderr, label).toContain('TESSERA_ERR_CP_UNREACHABLE');
      expect(await exited(doomed), label).toBe('SIGKILL');

      const next = steps[i + 1];
      running = await startControlPlaneProcess(dir, config, next ? { ...process.env, TESSERA_TEST_CRASH_AT: next.point } : process.env);
      if (!newId) newId = (await caStatus()).authorities.find((a) => a.state === 'prepared')?.id ?? '';
      await expectConsistent(step.after(), before);
      doomed = running;
    }
    expect(newId).not.toBe('');

    // Nothing lost across four kills: the token made before them still works, once; the audit trail kept its lines.
    const late = await fetchSvid('spare', spare);
    expect(await opensslVerifies(late.file)).toBe(true);
    const audit = await readFile(join(dataDir(), 'audit.log'), 'utf8');
    expect(audit).toContain(`"serial":"${before.serial}"`);
    expect(audit).toContain('"event":"ca.created"');
    // The two steps that committed before the kill lost their own audit lines; the restarts recorded what happened.
    const recovered = audit
      .split('\n')
      .filter((l) => l.includes('"event":"ca.recovered"'))
      .map((l) => JSON.parse(l) as { authority: string; state: string; audited?: string });
    expect(recovered.map((e) => [e.authority, e.audited, e.state])).toEqual([
      [newId, undefined, 'prepared'],
      [oldId, 'active', 'retired'],
      [newId, 'prepared', 'active'],
    ]);
    // The old root stays in the bundle while `before` (signed by it) is live.
    const retire = await tesseraInProcess(['ca', 'retire', '--data-dir', dataDir()]);
    expect(retire.stderr).toContain('TESSERA_ERR_CA_AUTHORITY_IN_USE');
    // A control plane that recovered from the kills still stops cleanly.
    expect(await running!.stop()).toBe(0);
  }, 180_000);
});
