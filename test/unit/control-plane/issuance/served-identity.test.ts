// The control plane's served identity: a renewed SVID becomes the one reported (/certs, readiness) only once the
// TLS stack took it. An outside audit activated an authority OpenSSL refused to serve ("ca md too weak"): the old
// SVID stayed on the wire while /certs described the new one.
import { afterEach, describe, expect, test } from 'vitest';
import { type RunningApi, startTestApi } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

describe('ServedIdentity.refresh', () => {
  const tmp = tempDirPerTest();
  let api: RunningApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  test('a new SVID the server refuses to serve is not adopted; the next one that is served is', async () => {
    api = await startTestApi(tmp.dir, new FakeTime(Date.UTC(2026, 0, 1)));
    const before = api.served.svid!;
    await api.ca.prepare();
    await api.ca.activate();
    const signer = api.ca.current().signer.authorityId;
    expect(before.authorityId).not.toBe(signer);

    await expect(api.served.refresh(true, () => { throw new Error('ca md too weak'); })).rejects.toThrow('ca md too weak');
    expect(api.served.svid).toBe(before);

    let served = '';
    await api.served.refresh(true, (identity) => { served = identity.certChainPem; });
    expect(api.served.svid!.authorityId).toBe(signer);
    expect(api.served.svid!.serial).not.toBe(before.serial);
    expect(served).toBe(api.served.svid!.certChainPem);
  });
});
