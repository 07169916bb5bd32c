// The control plane's served identity: a renewed SVID becomes the one reported (/certs, readiness) only once the
// TLS stack took it. An outside audit activated an authority OpenSSL refused to serve ("ca md too weak"): the old
// SVID stayed on the wire while /certs described the new one. Which authority signs it (self-signer.ts, audit 55b
// F1): after an activate the retired one still does, so a proxy that missed the prepare can reconnect; its own SVIDs
// keep it from nobody's retire; it moves to the active one when the retired one is removed, or when the retired
// chain can no longer give a whole lifetime.
import { afterEach, describe, expect, test } from 'vitest';
import { HOUR_MS, type RunningApi, startTestApi } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const DAY_MS = 24 * HOUR_MS;

describe('ServedIdentity.refresh', () => {
  const tmp = tempDirPerTest();
  let api: RunningApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  test('activate keeps the SVID of the retired authority; once it is removed, a new SVID the server refuses to serve is not adopted and the next one served is', async () => {
    api = await startTestApi(tmp.dir, new FakeTime(Date.UTC(2026, 0, 1)));
    const before = api.served.svid!;
    await api.ca.prepare();
    await api.ca.activate();
    const signer = api.ca.current().signer.authorityId;
    expect(before.authorityId).not.toBe(signer);
    await api.served.refresh(true, () => {});
    expect(api.served.svid).toBe(before);

    // Only its own SVID chains to the retired authority: that keeps nothing in the bundle.
    expect(await api.ca.retire()).toEqual([before.authorityId]);
    await expect(api.served.refresh(true, () => { throw new Error('ca md too weak'); })).rejects.toThrow('ca md too weak');
    expect(api.served.svid).toBe(before);

    let served = '';
    await api.served.refresh(true, (identity) => { served = identity.certChainPem; });
    expect(api.served.svid!.authorityId).toBe(signer);
    expect(api.served.svid!.serial).not.toBe(before.serial);
    expect(served).toBe(api.served.svid!.certChainPem);
  });

  test('the retired authority signs its renewals while its chain outlasts a lifetime, then the active one does', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    api = await startTestApi(tmp.dir, time);
    const old = api.served.svid!.authorityId;
    // A workload's SVID of the old authority keeps it retired, not removed, through the upkeep below.
    const far = time.nowMs() + 40 * DAY_MS;
    const inter = api.ca.current().signer.intermediate.serialNumber.toLowerCase();
    await api.store.inventory.record({ serial: 'aa01', spiffeId: 'spiffe://example.org/web', authorityId: old, intermediateSerial: inter, notBeforeMs: time.nowMs(), notAfterMs: far, issuedAtMs: time.nowMs(), attestedAs: 'join_token:x', kind: 'attest', caller: 't' });
    await api.ca.prepare();
    await api.ca.activate();
    const retiredEnd = api.ca.current().retiredSigners[0]!.notAfterMs;

    // Half-life: renewed, still from the retired authority (its intermediate, 30 days, outlasts an hour).
    const first = api.served.svid!;
    time.set(time.nowMs() + HOUR_MS / 2 + 1_000);
    await api.ca.maintain();
    await api.served.refresh(false, () => {});
    expect(api.served.svid!.serial).not.toBe(first.serial);
    expect(api.served.svid!.authorityId).toBe(old);

    // Within one lifetime of the retired chain's end: the active authority signs it (a retired intermediate never rotates).
    time.set(retiredEnd - HOUR_MS / 2);
    await api.ca.maintain();
    expect(api.ca.current().authorities.map((a) => a.record.state)).toContain('retired');
    await api.served.refresh(false, () => {});
    expect(api.served.svid!.authorityId).toBe(api.ca.current().signer.authorityId);
    expect(api.served.svid!.authorityId).not.toBe(old);
  });
});
