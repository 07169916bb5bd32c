// Policies and break-glass grants from a Config/Watch snapshot become one compiled PolicySnapshot, or nothing.
import { describe, expect, test } from 'vitest';
import { evaluate } from '../../../../common/policy/evaluate.js';
import { policyToJson } from '../../../../common/policy/parse-policy.js';
import type { AuthorizationPolicy } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { policySnapshotFromWatch } from '../../../../proxy/src/authz/control-plane-policy-source.js';

const api = SpiffeId.parse('spiffe://example.org/ns/default/sa/api');
const web = SpiffeId.parse('spiffe://example.org/ns/default/sa/web');
const batch = SpiffeId.parse('spiffe://example.org/ns/batch/sa/job');
const allowWeb: AuthorizationPolicy = {
  name: 'api-allow-web',
  selector: api.toString(),
  action: 'ALLOW',
  mode: 'enforce',
  rules: [{ from: [web.toString()] }],
};
const req = (source: SpiffeId, nowMs = 1_000) => ({ source, destination: api, protocol: 'http' as const, method: 'GET', path: '/', nowMs });

describe('policySnapshotFromWatch', () => {
  test('compiles the documents and grants, versioned after the snapshot', () => {
    const snap = policySnapshotFromWatch({
      version: '42',
      policies: [{ name: allowWeb.name, json: policyToJson(allowWeb) }],
      break_glass: [{ id: 'g1', to: api.toString(), from: [batch.toString()], expires_at_unix_ms: '5000', reason: 'incident 7', created_by: 'ops', created_at_unix_ms: '0' }],
    });
    expect(snap.version).toBe('cp-42');
    expect(evaluate(snap, req(web)).allowed).toBe(true);
    expect(evaluate(snap, req(batch, 4_000))).toMatchObject({ allowed: true, reason: 'break_glass' });
    expect(evaluate(snap, req(batch, 6_000)).allowed).toBe(false);
  });

  test('an empty snapshot denies (fail closed)', () => {
    expect(evaluate(policySnapshotFromWatch({ version: '1', policies: [], break_glass: [] }), req(web)).allowed).toBe(false);
  });

  test('one bad document refuses the whole snapshot', () => {
    const broken = { ...JSON.parse(policyToJson(allowWeb)), spec: { selector: api.toString(), action: 'MAYBE', mode: 'enforce', rules: [] } };
    const msg = (json: string, name = allowWeb.name) => ({ version: '2', policies: [{ name: allowWeb.name, json: policyToJson(allowWeb) }, { name, json }], break_glass: [] });
    expect(() => policySnapshotFromWatch(msg(JSON.stringify(broken), 'other'))).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT' }));
    expect(() => policySnapshotFromWatch(msg('{not json', 'other'))).toThrow(/is not JSON/);
    expect(() => policySnapshotFromWatch(msg(policyToJson(allowWeb), 'renamed'))).toThrow(/holds policy "api-allow-web"/);
  });
});
