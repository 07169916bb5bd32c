// A `tessera` admin command against an admin.sock that refuses connections (what a control plane killed with SIGKILL
// leaves, or one between its waiting socket and its serving one): connecting is tried again for about a second, then
// the command fails TESSERA_ERR_CP_UNREACHABLE with exit 1. The retry's wait was an unref'd timer, and the CLI's
// process ended mid-retry with exit 13 and no message at all (audit 62k F1); a socket that starts answering within
// the second is served. The built CLI as a child process, a real unix socket.
import { unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { tessera, withTempDir } from '../helpers/run.js';

test('a socket that keeps refusing: TESSERA_ERR_CP_UNREACHABLE, exit 1, after about a second of tries', async () => {
  await withTempDir(async (dir) => {
    writeFileSync(join(dir, 'admin.sock'), ''); // there, and refusing (ECONNREFUSED)
    const started = Date.now();
    const res = await tessera(['ca', 'status', '--data-dir', dir]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain('TESSERA_ERR_CP_UNREACHABLE');
    expect(res.stderr).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
  });
}, 30_000);

test('a socket that starts answering within the second: the command is served', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'admin.sock');
    writeFileSync(path, '');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ trustDomain: 'example.org', signingAuthority: 'aaaa', bundleFingerprints: [], authorities: [], removed: [] }));
    });
    const running = tessera(['ca', 'status', '--data-dir', dir]);
    await new Promise((r) => setTimeout(r, 400));
    unlinkSync(path);
    await new Promise<void>((r) => server.listen(path, () => r()));
    try {
      const res = await running;
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain('trust domain example.org');
    } finally {
      server.close();
    }
  });
}, 30_000);
