// A start that fails after its ports are bound lets them go: the proxy's composition root undoes every step it took
// (listeners, admin, identity streams) when a later one throws, as the control plane's does. Run in-process, since a
// CLI process that exits frees its ports anyway; an embedding host (tests, a supervisor in one process) would keep
// them bound, and a retry in the same process would fail on "address in use".
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { systemClock } from '../../common/clock.js';
import { loadProxyConfig } from '../../proxy/src/config/proxy-config.js';
import { startProxy } from '../../proxy/src/main.js';
import { freePort } from '../helpers/free-port.js';
import { writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
});
afterAll(async () => cleanup?.());

/** 'refused' once nothing listens on the port, 'open' while something accepts there. */
function probe(port: number): Promise<'open' | 'refused'> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? resolve('refused') : reject(e)));
  });
}

test('a Workload API socket that cannot be made fails the start after the listeners serve: inbound, outbound and admin ports are released', async () => {
  const files = await writeSvidFiles(ca, `spiffe://${TD}/ns/default/sa/web`, join(dir, 'id'));
  // A regular file where the socket's directory should be: the last step of the start fails with ENOTDIR.
  await writeFile(join(dir, 'not-a-dir'), '');
  const [inbound, outbound, admin] = [await freePort(), await freePort(), await freePort()];
  const configFile = join(dir, 'proxy.yaml');
  await writeFile(
    configFile,
    [
      'identity:',
      '  files:',
      `    certFile: ${files.certFile}`,
      `    keyFile: ${files.keyFile}`,
      `    bundleFile: ${files.bundleFile}`,
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:${inbound}, forwardTo: 127.0.0.1:9 }`,
      'outbound:',
      `  - { name: api, listen: 127.0.0.1:${outbound}, upstream: 127.0.0.1:9, spiffeId: spiffe://${TD}/ns/default/sa/api }`,
      `admin: { listen: 127.0.0.1:${admin} }`,
      'workloadApi:',
      `  socket: ${join(dir, 'not-a-dir', 'agent.sock')}`,
      '',
    ].join('\n'),
  );
  const config = loadProxyConfig(configFile);
  const log = pino({ level: 'silent' });
  const build = { version: 'test', node: process.versions.node, openssl: process.versions.openssl };
  await expect(startProxy(config, { clock: systemClock, deadlineClock: systemClock, log, env: {}, build })).rejects.toThrow(/ENOTDIR|not a directory/i);
  for (const port of [inbound, outbound, admin]) expect(await probe(port), `port ${port}`).toBe('refused');
});
