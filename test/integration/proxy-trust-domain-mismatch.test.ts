// `tessera proxy` with identity.controlPlane.trustDomain set to a domain its bootstrap bundle does not name stops at
// start with a coded config error naming the key (audit 52a F6). Before, it retried attestation for ever as
// UNAVAILABLE with a message that had the two trust domains the wrong way round.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { tessera, withTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

test('a trust domain the bootstrap bundle does not name: exit 1, CONFIG_INVALID naming the key and the bundle', async () => {
  await withTempDir(async (dir) => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    await writeFile(join(dir, 'bundle.pem'), ca.bundlePem());
    await writeFile(join(dir, 'token'), 'unused\n');
    // Nothing listens at the control-plane address: the start must not get as far as calling it.
    await writeFile(
      join(dir, 'proxy.yaml'),
      'identity:\n  controlPlane: { address: 127.0.0.1:9, bundleFile: ./bundle.pem, joinTokenFile: ./token, trustDomain: example.com }\nadmin: { listen: 127.0.0.1:0 }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }\n',
    );
    const r = await tessera(['proxy', '--config', join(dir, 'proxy.yaml')], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain('identity.controlPlane.trustDomain: "example.com"');
    expect(r.stderr).toContain('"example.org"');
  });
});
