// A sidecar whose telemetry.accessLog is a FIFO nobody has opened for reading (a log shipper not started yet, or
// gone) starts, serves and stops all the same: open(2) of such a FIFO would block the process before it listened,
// and SIGTERM with it. Real process, real FIFO (mkfifo), never read by anyone.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
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
  execFileSync('mkfifo', [join(dir, 'access.fifo')]);
  // Nothing listens on port 9: the proxy answers the request itself, and logs it (to the FIFO: dropped).
  await writeFile(
    join(dir, 'api.yaml'),
    'identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\n' +
      `outbound:\n  - { name: up, listen: 127.0.0.1:0, upstream: 127.0.0.1:9, spiffeId: ${API} }\n` +
      'admin: { listen: 127.0.0.1:0 }\nlimits: { drainTimeout: 1s }\ntelemetry: { accessLog: access.fifo }\n',
  );
}, 30_000);

afterAll(async () => {
  await proxy?.stop(1_000);
  await cleanup?.();
});

test('an access-log FIFO without a reader: the proxy becomes ready, serves, warns once, and SIGTERM ends it with exit 0', async () => {
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
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
