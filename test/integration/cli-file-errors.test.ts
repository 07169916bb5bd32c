// Every file a user names — to svid verify/fetch, inject, load, policy check, proxy and control-plane configs — fails
// with a TESSERA_ERR_ code and the file's path when it is missing, a directory, empty, not PEM or PEM of the wrong type.
// Each command runs once through the real binary (its first case); the other cases run the same dispatcher in-process
// (tesseraInProcess), without a node start each.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

let dir: string;
let cleanup: () => Promise<void>;
let good: { bundle: string; cert: string; key: string };
/** Each bad file and the code it must be reported with. */
let bad: Record<'missing' | 'directory' | 'empty' | 'notPem' | 'keyPem', { path: string; code: string }>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create();
  const svid = await ca.mintSvid('spiffe://example.org/ns/default/sa/api');
  good = { bundle: join(dir, 'bundle.pem'), cert: join(dir, 'svid.pem'), key: join(dir, 'key.pem') };
  await writeFile(good.bundle, ca.bundlePem());
  await writeFile(good.cert, svid.chainPem);
  await writeFile(good.key, svid.keyPem);
  bad = {
    missing: { path: join(dir, 'nope.pem'), code: 'TESSERA_ERR_CLI_FILE_UNREADABLE' },
    directory: { path: join(dir, 'a-directory.pem'), code: 'TESSERA_ERR_CLI_FILE_UNREADABLE' },
    empty: { path: join(dir, 'empty.pem'), code: 'TESSERA_ERR_FILE_EMPTY' },
    notPem: { path: join(dir, 'notes.txt'), code: 'TESSERA_ERR_PEM_MALFORMED' },
    keyPem: { path: join(dir, 'key-not-cert.pem'), code: 'TESSERA_ERR_PEM_WRONG_TYPE' },
  };
  await mkdir(bad.directory.path);
  await writeFile(bad.empty.path, '\n');
  await writeFile(bad.notPem.path, 'this is not a certificate\n');
  await writeFile(bad.keyPem.path, svid.keyPem);
});
afterAll(async () => cleanup());

/** `binary`: through the built `tessera` (a node start); otherwise in-process. */
async function expectNamedError(args: string[], file: string, code: string, binary = false): Promise<void> {
  const r = binary ? await tessera(args) : await tesseraInProcess(args, dir);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(1);
  expect(r.stderr).toContain(code);
  expect(r.stderr).toContain(file);
  expect(r.stderr).not.toMatch(/^error:[0-9A-F]{8}:/m);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const PEM_CASES = ['missing', 'directory', 'empty', 'notPem', 'keyPem'] as const;

// Each check only reads its files and spawns its own CLI: they run side by side.
describe.concurrent('files named on the command line', () => {
  for (const c of PEM_CASES) {
    test(`svid verify: a ${c} certificate, and a ${c} --bundle`, async () => {
      const f = bad[c];
      await expectNamedError(['svid', 'verify', '--bundle', good.bundle, f.path], f.path, f.code, c === 'missing');
      await expectNamedError(['svid', 'verify', '--bundle', f.path, good.cert], f.path, f.code);
    });
    test(`svid fetch, inject, load: a ${c} certificate file`, async () => {
      const f = bad[c];
      const binary = c === 'missing';
      await expectNamedError(['svid', 'fetch', '--control-plane', '127.0.0.1:1', '--bundle', f.path, '--join-token', 't', '--out', join(dir, 'out')], f.path, f.code, binary);
      await expectNamedError(['inject', '-f', good.cert, '--bundle', f.path], f.path, f.code, binary);
      await expectNamedError(['load', '--url', 'https://127.0.0.1:1/', '--cert', f.path, '--key', good.key], f.path, f.code, binary);
    });
  }

  test('svid verify --jwt: a --bundle that is not a SPIFFE bundle is named, with the file wanted; a PEM one is said to be PEM (audit 61d)', async () => {
    const wanted = "--jwt reads the SPIFFE bundle (JSON, the control plane's <dataDir>/bundle.spiffe.json)";
    const pem = await tesseraInProcess(['svid', 'verify', '--jwt', '--bundle', good.bundle, '--audience', 'a', 'a.b.c'], dir);
    expect(pem.code).toBe(1);
    expect(pem.stderr).toBe(`tessera svid verify: TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED: --bundle ${good.bundle}: not JSON: ${wanted}; this file is PEM, the bundle svid verify takes without --jwt\n`);
    const text = await tesseraInProcess(['svid', 'verify', '--jwt', '--bundle', bad.notPem.path, '--audience', 'a', 'a.b.c'], dir);
    expect(text.stderr).toBe(`tessera svid verify: TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED: --bundle ${bad.notPem.path}: not JSON: ${wanted}\n`);
    // A SPIFFE bundle with a faulty entry is named, its fault as it is, without the hint.
    const faulty = join(dir, 'faulty.spiffe.json');
    await writeFile(faulty, '{"keys": [{"use": "jwt-svid", "kty": "EC"}]}');
    const entry = await tesseraInProcess(['svid', 'verify', '--jwt', '--bundle', faulty, '--audience', 'a', 'a.b.c'], dir);
    expect(entry.stderr).toMatch(new RegExp(`^tessera svid verify: TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED: --bundle ${faulty.replaceAll('.', '\\.')}: [^\\n]*kid`));
    expect(entry.stderr).not.toContain('--jwt reads');
  });

  test('load: a certificate where the key belongs', async () => {
    await expectNamedError(['load', '--url', 'https://127.0.0.1:1/', '--cert', good.cert, '--key', good.cert], good.cert, 'TESSERA_ERR_PEM_WRONG_TYPE');
  });

  test('inject: a missing, a directory and an empty manifest', async () => {
    for (const c of ['missing', 'directory', 'empty'] as const) await expectNamedError(['inject', '-f', bad[c].path, '--bundle', good.bundle], bad[c].path, bad[c].code);
  });

  test('policy check: a missing policy directory, and a file given as one', async () => {
    const args = ['--from', 'spiffe://example.org/a', '--to', 'spiffe://example.org/b'];
    await expectNamedError(['policy', 'check', '--policies', bad.missing.path, ...args], bad.missing.path, 'TESSERA_ERR_CLI_FILE_UNREADABLE', true);
    await expectNamedError(['policy', 'check', '--policies', good.cert, ...args], good.cert, 'TESSERA_ERR_CLI_FILE_UNREADABLE');
  });
});

describe.concurrent('config files', () => {
  for (const command of ['proxy', 'control-plane']) {
    test(`tessera ${command}: a missing, a directory and an empty --config`, async () => {
      await expectNamedError([command, '--config', bad.missing.path], bad.missing.path, 'TESSERA_ERR_CONFIG_UNREADABLE', true);
      await expectNamedError([command, '--config', bad.directory.path], bad.directory.path, 'TESSERA_ERR_CONFIG_UNREADABLE');
      await expectNamedError([command, '--config', bad.empty.path], bad.empty.path, 'TESSERA_ERR_FILE_EMPTY');
    });
  }
});
