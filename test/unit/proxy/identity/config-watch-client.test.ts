// ConfigWatch: complete snapshots are validated whole and applied once; bad, older or repeated snapshots are not;
// a restart (after rotation) reopens the stream with the then-current SVID.
import { describe, expect, test } from 'vitest';
import { policyToJson } from '../../../../common/policy/parse-policy.js';
import { ConfigWatch, type ConfigUpdate, type ConfigWatchEvent } from '../../../../proxy/src/identity/config-watch-client.js';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import type { IssuedSvid } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import type { StreamCallbacks } from '../../../../proxy/src/identity/reconnecting-stream.js';
import { TestCa } from '../../../helpers/test-ca.js';

const policy = { name: 'p', selector: 'spiffe://example.org/**', action: 'ALLOW' as const, mode: 'enforce' as const, rules: [{ from: ['spiffe://example.org/**'] }] };

function snapshot(version: string, ca: TestCa, extra: Partial<ConfigSnapshotMsg> = {}): ConfigSnapshotMsg {
  return {
    version,
    bundles: [{ trust_domain: ca.trustDomain, x509_authorities: [ca.root.cert.raw] }],
    policies: [{ name: 'p', json: policyToJson(policy) }],
    break_glass: [],
    generated_at_unix_ms: '1',
    ...extra,
  };
}

describe('ConfigWatch', () => {
  test('applies valid snapshots in order and refuses bad or older ones', async () => {
    const ca = await TestCa.create();
    const other = await TestCa.create({ rootName: 'CN=Next Root' });
    const svids = [{ serial: 'aa' }, { serial: 'bb' }] as unknown as IssuedSvid[];
    let current = svids[0]!;
    const opened: { serial: string; cb: StreamCallbacks<ConfigSnapshotMsg> }[] = [];
    const applied: ConfigUpdate[] = [];
    const events: ConfigWatchEvent[] = [];
    const w = new ConfigWatch({
      open: (svid, cb) => {
        opened.push({ serial: svid.serial, cb });
        return { cancel: () => {} };
      },
      currentSvid: () => current,
      apply: (u) => void applied.push(u),
      onEvent: (e) => events.push(e),
    });
    w.start();
    const first = w.firstSnapshot();
    opened[0]!.cb.onMessage(snapshot('7', ca));
    await first;
    expect(w.version).toBe('7');
    expect(applied[0]!.bundles.get('example.org')!.fingerprints()).toHaveLength(1);
    expect(applied[0]!.policies.version).toBe('cp-7');

    // CA prepare: old + new authority in one bundle.
    opened[0]!.cb.onMessage(snapshot('8', ca, { bundles: [{ trust_domain: 'example.org', x509_authorities: [ca.root.cert.raw, other.root.cert.raw] }] }));
    expect(applied[1]!.bundles.get('example.org')!.fingerprints()).toHaveLength(2);

    opened[0]!.cb.onMessage(snapshot('8', ca)); // repeated version (reconnect): ignored silently
    opened[0]!.cb.onMessage(snapshot('5', ca)); // older: refused
    opened[0]!.cb.onMessage(snapshot('9', ca, { bundles: [{ trust_domain: 'example.org', x509_authorities: [Buffer.from('junk')] }] }));
    opened[0]!.cb.onMessage(snapshot('10', ca, { policies: [{ name: 'p', json: '{}' }] }));
    expect(applied).toHaveLength(2);
    expect(w.version).toBe('8');
    expect(events.filter((e) => e.kind === 'refused').map((e) => e.version)).toEqual(['5', '9', '10']);

    current = svids[1]!;
    w.restart();
    expect(opened.map((o) => o.serial)).toEqual(['aa', 'bb']);
    opened[0]!.cb.onMessage(snapshot('11', ca)); // the replaced stream is ignored
    expect(applied).toHaveLength(2);
    opened[1]!.cb.onMessage(snapshot('11', ca));
    expect(w.version).toBe('11');
    w.stop();
  });

  test('a snapshot the stores refuse is counted and not recorded as applied', async () => {
    const ca = await TestCa.create();
    let cb!: StreamCallbacks<ConfigSnapshotMsg>;
    const events: ConfigWatchEvent[] = [];
    const w = new ConfigWatch({
      open: (_s, c) => {
        cb = c;
        return { cancel: () => {} };
      },
      currentSvid: () => ({ serial: 'aa' }) as unknown as IssuedSvid,
      apply: () => {
        throw new Error('store refused');
      },
      onEvent: (e) => events.push(e),
    });
    w.start();
    cb.onMessage(snapshot('1', ca));
    expect(w.version).toBeUndefined();
    expect(events).toEqual([{ kind: 'refused', version: '1', error: 'store refused' }]);
    w.stop();
  });
});
