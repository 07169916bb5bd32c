// Bad command-line values lose nothing and are told with a code (audit 55a F2-F5, F12), through the real binary and a
// real control plane: an --out that cannot take the files fails before the join token is spent (the same token then
// works), a single-valued flag given twice is a usage error (not a half-done ban), a duration past its flag's range
// is a usage error naming the flag, and `load`'s numbers, method and cert/key pair are checked before any connection.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCa } from '../helpers/test-ca.js';
import { type RunningControlPlane, TD, createJoinToken, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type RunResult, makeTempDir, tessera } from '../helpers/run.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundleFile: string;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  bundleFile = join(cp.dataDir, 'bundle.pem');
  await writeFile(join(dir, 'a-file'), 'x\n');
});
afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

function expectUsage(r: RunResult, flag: string, text: string): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(new RegExp(`^tessera [a-z -]+: TESSERA_ERR_CLI_USAGE: --${flag}\\b`));
  expect(r.stderr).toContain(text);
}

describe('svid fetch --out is checked before the join token is spent (audit 55a F2)', () => {
  test('through a file, and with key.pem a directory: CLI_FILE_UNWRITABLE naming the path; the same token then works', async () => {
    const tok = await createJoinToken(cp.dataDir, WEB);
    const fetch = (out: string) => tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', bundleFile, '--join-token', tok, '--out', out]);
    const throughFile = join(dir, 'a-file', 'sub');
    const withDirKey = join(dir, 'dir-key');
    await mkdir(join(withDirKey, 'key.pem'), { recursive: true });
    for (const [out, shown] of [
      [throughFile, throughFile],
      [withDirKey, join(withDirKey, 'key.pem')],
    ] as const) {
      const r = await fetch(out);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`tessera svid fetch: TESSERA_ERR_CLI_FILE_UNWRITABLE: --out ${shown}: `);
    }
    const ok = await fetch(join(dir, 'good'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ spiffeId: WEB });
  }, 30_000);
});

describe('ca intermediate-csr --out is checked before the control plane makes a key', () => {
  test('an --out through a file: CLI_FILE_UNWRITABLE, and no pending request was made', async () => {
    const r = await tessera(['ca', 'intermediate-csr', '--data-dir', cp.dataDir, '--new-key', '--out', join(dir, 'a-file', 'csr.pem')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_CLI_FILE_UNWRITABLE: --out ');
    const status = await tessera(['ca', 'status', '--data-dir', cp.dataDir, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { pendingRequest?: unknown }).pendingRequest ?? null).toBeNull();
  });
});

describe('a single-valued flag given twice is a usage error (audit 55a F3)', () => {
  test('revoke id --spiffe-id A --spiffe-id B bans neither; token create refuses the same', async () => {
    const a = `spiffe://${TD}/ns/twice/sa/first`;
    const b = `spiffe://${TD}/ns/twice/sa/second`;
    expectUsage(await tessera(['revoke', 'id', '--data-dir', cp.dataDir, '--spiffe-id', a, '--spiffe-id', b, '--reason', 't']), 'spiffe-id', 'given twice');
    const list = await tessera(['revoke', 'list', '--data-dir', cp.dataDir, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toContain('/ns/twice/');
    expectUsage(await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', a, `--spiffe-id=${b}`]), 'spiffe-id', 'given twice');
  });
});

describe('durations and numbers out of range are usage errors naming the flag (audit 55a F4, F12, F16)', () => {
  test('certs list --expiring-within 99999999999d, a malformed one with its code, an empty --config', async () => {
    expectUsage(await tessera(['certs', 'list', '--data-dir', cp.dataDir, '--expiring-within', '99999999999d']), 'expiring-within', 'out of range: from 1ms to 36500d');
    expectUsage(await tessera(['certs', 'list', '--data-dir', cp.dataDir, '--expiring-within', 'soon']), 'expiring-within', 'TESSERA_ERR_CONFIG_BAD_DURATION');
    expectUsage(await tessera(['proxy', '--config', '']), 'config', 'needs a value');
    expectUsage(await tessera(['control-plane', '--config=']), 'config', 'needs a value');
  });

  test('load: --connections past 10000, a method that is no method, a key of another certificate, an unwritable --json', async () => {
    const url = ['load', '--url', 'https://127.0.0.1:1/', '--duration', '1s'];
    expectUsage(await tessera([...url, '--connections', '20000']), 'connections', 'from 1 to 10000');
    expectUsage(await tessera([...url, '--connections', '1e9']), 'connections', 'from 1 to 10000');
    expectUsage(await tessera([...url, '--method', 'GE T']), 'method', 'is not an HTTP method');
    const ca = await TestCa.create();
    const [one, two] = [await ca.mintSvid(WEB), await ca.mintSvid(WEB)];
    await writeFile(join(dir, 'one.pem'), one.chainPem);
    await writeFile(join(dir, 'two-key.pem'), two.keyPem);
    expectUsage(await tessera([...url, '--cert', join(dir, 'one.pem'), '--key', join(dir, 'two-key.pem')]), 'key', 'is not the key of the certificate in --cert');
    const json = await tessera([...url, '--json', join(dir, 'a-file', 'r.json')]);
    expect(json.code, json.stderr).toBe(1);
    expect(json.stderr).toContain(`tessera load: TESSERA_ERR_CLI_FILE_UNWRITABLE: --json ${join(dir, 'a-file', 'r.json')}: a parent of it is not a directory (ENOTDIR)`);
    // Repeatable flags stay repeatable: two --header values reach the next check (the URL's scheme).
    expectUsage(await tessera(['load', '--url', 'ftp://x/', '--header', 'a: 1', '--header', 'b: 2']), 'url', 'must be http');
  }, 30_000);
});
