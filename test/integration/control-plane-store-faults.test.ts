// The SQLite store failing under a running control plane (audit F6), with real processes. A full disk (a small
// tmpfs, where this machine may mount one): SignSvid is refused gRPC UNAVAILABLE with TESSERA_ERR_STORE_FULL, an
// operator command says the same, the log says it once, /ready answers 503 naming it, and once there is space again
// the control plane is ready and issues by itself. A tessera.db damaged under it: the dashboard's panels name
// TESSERA_ERR_STORE_CORRUPT, the log has the failures (panel by panel), /ready says the store is damaged. Before:
// TESSERA_ERR_ISSUANCE_INTERNAL, no log line at any level, /ready 200. The disk kept full with no traffic stays not
// ready through the write probes (audit 24b F3: they fitted a small write into pages already allocated).
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { controlPlaneClients, createJoinToken, errorCode, type RunningControlPlane, signSvid, startControlPlaneProcess, TD } from '../helpers/control-plane.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { canMount } from '../helpers/secret-mount.js';
import { until } from '../helpers/until.js';

let dir: string;
let cleanup: () => Promise<void>;
const running: RunningControlPlane[] = [];
const mounts: string[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterAll(async () => {
  for (const cp of running) await cp.stop();
  for (const m of mounts) await run('umount', [m]);
  await cleanup?.();
});

async function start(root: string): Promise<RunningControlPlane> {
  await mkdir(root, { recursive: true });
  const file = join(root, 'cp.yaml');
  await writeFile(file, [`trustDomain: ${TD}`, 'dataDir: ./data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'logLevel: info', 'attestors: { joinToken: { enabled: true } }', ''].join('\n'));
  const cp = await startControlPlaneProcess(root, file);
  running.push(cp);
  return cp;
}

async function ready(cp: RunningControlPlane): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://${cp.admin}/ready`);
  return { status: r.status, body: await r.text() };
}

/** The control plane's JSON log lines with this message. */
function logged(cp: RunningControlPlane, msg: string): Record<string, unknown>[] {
  return cp
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === msg);
}

async function attest(cp: RunningControlPlane, name: string) {
  const c = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));
  try {
    return await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: await createJoinToken(cp.dataDir, `spiffe://${TD}/ns/faults/sa/${name}`) });
  } finally {
    c.close();
  }
}

describe('a full disk under the data dir', () => {
  test.skipIf(process.getuid?.() !== 0)('coded TESSERA_ERR_STORE_FULL, logged once, not ready; ready and issuing again once there is space', async (ctx) => {
    if (!canMount()) ctx.skip();
    const fsDir = join(dir, 'small-fs');
    await mkdir(fsDir);
    const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', fsDir]);
    if (m.code !== 0) ctx.skip();
    mounts.push(fsDir);
    const cp = await start(fsDir);
    expect((await attest(cp, 'before')).err).toBeNull();
    const token = await createJoinToken(cp.dataDir, `spiffe://${TD}/ns/faults/sa/full`);
    // Fill what is left, 1 MiB, then 4 KiB, then 512 bytes at a time, until the file system says no to each: not a
    // byte left for the probe to find.
    const filler = openSync(join(fsDir, 'filler'), 'w');
    try {
      for (const size of [1 << 20, 4096, 512]) {
        const chunk = Buffer.alloc(size, 1);
        try {
          for (;;) writeSync(filler, chunk);
        } catch {
          // ENOSPC: full at this size
        }
      }
    } finally {
      closeSync(filler);
    }
    const c = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));
    try {
      for (let i = 0; i < 3; i++) {
        const refused = await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token });
        expect(refused.err?.code, refused.err?.message).toBe(grpc.status.UNAVAILABLE);
        expect(errorCode(refused.err)).toBe('TESSERA_ERR_STORE_FULL');
      }
      const created = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', `spiffe://${TD}/ns/faults/sa/other`]);
      expect(created.code).not.toBe(0);
      expect(created.stderr).toContain('TESSERA_ERR_STORE_FULL');
      const r = await ready(cp);
      expect(r.status).toBe(503);
      expect(r.body).toContain('TESSERA_ERR_STORE_FULL');
      // Four refusals, one line (rate-limited per code), plus the one saying readiness went.
      expect(logged(cp, 'a store operation failed').filter((l) => l['code'] === 'TESSERA_ERR_STORE_FULL')).toHaveLength(1);
      expect(logged(cp, 'the store cannot take writes: not ready until a write succeeds again')).toHaveLength(1);
      // Still full, no traffic, two probes later (every 5 s): still not ready, and never said to take writes (audit
      // 24b F3: a one-counter probe fitted in pages already allocated and /ready flapped to 200 every 5 s).
      for (let i = 0; i < 12; i++) {
        expect((await ready(cp)).status, `second ${i}`).toBe(503);
        await new Promise((r) => setTimeout(r, 1_000));
      }
      expect(logged(cp, 'the store takes writes again: ready')).toHaveLength(0);
      const still = await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token });
      expect(errorCode(still.err)).toBe('TESSERA_ERR_STORE_FULL');

      await rm(join(fsDir, 'filler'));
      await until('ready again once there is space', async () => (await ready(cp)).status === 200, 15_000, 200);
      // The child's stderr is read as it comes: the line may follow the readiness it reports by a moment.
      await until('the recovery logged', () => logged(cp, 'the store takes writes again: ready').length > 0, 5_000, 50);
      expect(logged(cp, 'the store takes writes again: ready')).toHaveLength(1);
      // The refused calls had not spent the token.
      const again = await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token });
      expect(again.err).toBeNull();
    } finally {
      c.close();
    }
  }, 90_000);
});

describe('tessera.db damaged under the running control plane', () => {
  test('the dashboard panels name TESSERA_ERR_STORE_CORRUPT, the log has them per panel, /ready says the store is damaged', async () => {
    const cp = await start(join(dir, 'corrupt'));
    await createJoinToken(cp.dataDir, `spiffe://${TD}/ns/faults/sa/corrupt`);
    const file = join(cp.dataDir, 'tessera.db');
    // Everything into the main file, then every page after the first (the schema) overwritten.
    const side = new DatabaseSync(file);
    side.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    side.close();
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4096 * 64, 0xa5), 0, 4096 * 64, 4096);
    closeSync(fd);
    const fleet = (await (await fetch(`http://${cp.admin}/api/fleet`)).json()) as { unavailable: { panel: string; reason: string }[] };
    expect(fleet.unavailable.length).toBeGreaterThan(0);
    for (const u of fleet.unavailable) expect(u.reason, u.panel).toContain('TESSERA_ERR_STORE_CORRUPT');
    const panelsLogged = () => logged(cp, 'the fleet view failed').flatMap((l) => l['panels'] as string[]).sort();
    await until('the panel failures are logged', () => panelsLogged().length >= fleet.unavailable.length, 5_000, 50);
    expect(panelsLogged()).toEqual(fleet.unavailable.map((u) => u.panel).sort());
    expect(logged(cp, 'a store operation failed').map((l) => l['code'])).toContain('TESSERA_ERR_STORE_CORRUPT');
    const r = await ready(cp);
    expect(r.status).toBe(503);
    expect(r.body).toContain('the store is damaged (TESSERA_ERR_STORE_CORRUPT');
  }, 30_000);
});
