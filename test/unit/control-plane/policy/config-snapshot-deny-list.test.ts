// The deny-list in Config/Watch snapshots, end to end through the wire types: the control plane puts the same list
// in every proxy's snapshot (sorted, part of the content key, so a ban alone triggers a send), and the proxy's
// parser turns it into the matcher's snapshot; a snapshot without the field (an older control plane) bans nobody.
import { describe, expect, test } from 'vitest';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { buildSnapshot } from '../../../../control-plane/src/policy/config-snapshot.js';
import { parseConfigSnapshot } from '../../../../proxy/src/identity/config-watch-client.js';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import { deniedBy } from '../../../../proxy/src/tls/deny-list.js';
import { TestCa } from '../../../helpers/test-ca.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = SpiffeId.parse('spiffe://example.org/ns/default/sa/api');

describe('deny-list in config snapshots', async () => {
  const ca = await TestCa.create();
  const bundle = TrustBundle.parse(ca.trustDomain, ca.bundlePem());
  const build = (spiffeIds: string[], serials: string[]) => buildSnapshot({ version: 3, bundles: [bundle], policies: [], grants: [], denyList: { spiffeIds, serials } }, API, 1_000);

  test('the list is in the message, sorted, and part of the content key', () => {
    const none = build([], []);
    const one = build([WEB, 'spiffe://example.org/a'], ['0b', '0a11']);
    expect(one.message.deny_list).toEqual({ spiffe_ids: ['spiffe://example.org/a', WEB], serials: ['0a11', '0b'] });
    expect(one.contentKey).not.toBe(none.contentKey);
    expect(build(['spiffe://example.org/a', WEB], ['0a11', '0b']).contentKey).toBe(one.contentKey);
  });

  test('the proxy parses it into the matcher\'s snapshot', () => {
    const msg = build([WEB], ['0A11']).message as unknown as ConfigSnapshotMsg;
    const update = parseConfigSnapshot(msg);
    expect(deniedBy(update.denyList, { idText: WEB, serial: '01' })).toBe('spiffe_id');
    expect(deniedBy(update.denyList, { idText: 'spiffe://example.org/x', serial: '0a11' })).toBe('serial');
    expect(deniedBy(update.denyList, { idText: 'spiffe://example.org/x', serial: '01' })).toBeNull();
  });

  test('a snapshot without a deny-list (proto3 default: null) bans nobody', () => {
    const msg = { ...(build([], []).message as unknown as ConfigSnapshotMsg), deny_list: null };
    expect(parseConfigSnapshot(msg).denyList.spiffeIds.size).toBe(0);
  });
});
