// Access-log destinations that take nothing, with real processes: a sidecar whose stdout nobody reads any more (a
// stalled log collector, a parent that stopped reading its pipe) still stops on SIGTERM, its last lines given up
// (the test stops reading the child's stdout and fills the pipe); and one whose telemetry.accessLog is a FIFO
// nobody has opened for reading (a log shipper not started yet, or gone) starts, serves and stops all the same:
// open(2) of such a FIFO would block the process before it listened, and SIGTERM with it.
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;

let dir: string;
let cleanup: () => Promise<void>;
let proxy: ProxyProcess | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  // Nothing listens on port 9: every request is answered at once by the proxy itself, and logged (on stdout, the
  // default destination).
  await writeFile(
    join(dir, 'api.yaml'),
    'identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\n' +
      `outbound:\n  - { name: up, listen: 127.0.0.1:0, upstream: 127.0.0.1:9, spiffeId: ${API} }\n` +
      'admin: { listen: 127.0.0.1:0 }\nlimits: { drainTimeout: 1s }\n',
  );
  execFileSync('mkfifo', [join(dir, 'access.fifo')]);
  await writeFile(join(dir, 'api-fifo.yaml'), `${await readFile(join(dir, 'api.yaml'), 'utf8')}telemetry: { accessLog: access.fifo }\n`);
}, 30_000);

afterAll(async () => {
  await proxy?.stop(1_000);
  await cleanup?.();
});

test('SIGTERM ends a proxy whose stdout pipe is full: exit 0, not stuck on the access log', async () => {
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
  // The test stops reading: once its buffer and the pipe (64 KiB) are full, the proxy's writes to stdout block.
  proxy.child.stdout!.pause();
  const port = proxy.ports.get('outbound/up')!;
  let answered = 0;
  const worker = async () => {
    for (let i = 0; i < 150; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/fill-the-pipe-with-access-log-lines/${'x'.repeat(100)}`);
      await res.arrayBuffer();
      answered++;
    }
  };
  // 3,000 lines of ~300 bytes: several times what the pipe and the reading side's buffer hold.
  await Promise.all(Array.from({ length: 20 }, worker));
  expect(answered).toBe(3_000);
  // Lines wait at most a second in the batch before they are handed to the destination (and block there).
  await new Promise((r) => setTimeout(r, 1_500));
  // Bounded by the helper: SIGTERM, then SIGKILL after 15 s, which would give null instead of 0.
  expect(await proxy.stop()).toBe(0);
  proxy = undefined;
}, 60_000);

test('an access-log FIFO without a reader: the proxy becomes ready, serves, warns once, and SIGTERM ends it with exit 0', async () => {
  proxy = await startProxyProcess(join(dir, 'api-fifo.yaml'));
  const res = await fetch(`http://127.0.0.1:${proxy.ports.get('outbound/up')!}/hello`);
  await res.arrayBuffer();
  expect(res.status).toBe(502);
  const warnings = proxy
    .stderr()
    .split('\n')
    .filter((l) => l.includes('access log waiting for a reader'));
  expect(warnings).toHaveLength(1);
  expect(JSON.parse(warnings[0]!)).toMatchObject({ code: 'ENXIO', destination: join(dir, 'access.fifo') });
  // Bounded by the helper: SIGTERM, then SIGKILL after 15 s, which would give null instead of 0.
  expect(await proxy.stop()).toBe(0);
  proxy = undefined;
}, 60_000);
