// The refusal audit budget (admin/refusal-audit.ts), on a fake clock: a subject refused in a loop (one event, one
// code) writes at most its burst and then its rate of rows, the next row written says how many were left out,
// subjects without a proven ID share one more budget, and rows that are not network-reachable refusals are never
// held back.
import { describe, expect, test } from 'vitest';
import { budgetedRefusals } from '../../../../control-plane/src/admin/refusal-audit.js';
import type { AuditEvent, AuditLog } from '../../../../control-plane/src/store/store-contract.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function setup() {
  const time = new FakeTime();
  const rows: AuditEvent[] = [];
  const inner: AuditLog = { record: (_at, e) => rows.push(e), recent: async () => [], flush: async () => {}, prune: async () => 0 };
  const left: string[] = [];
  const audit = budgetedRefusals(inner, time, (event) => left.push(event), { perSubject: { burst: 3, perMinute: 60 }, anonymous: { burst: 5, perMinute: 60 } });
  return { time, rows, left, audit };
}

describe('budgetedRefusals', () => {
  test('one SPIFFE ID refused in a loop: its burst is written, the rest counted, the next row says how many', () => {
    const { time, rows, left, audit } = setup();
    for (let i = 0; i < 100; i++) audit.record(time.nowMs(), { event: 'registration.refused', result: 'refused', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', spiffeId: 'spiffe://td/a', caller: '10.0.0.1:5000' });
    expect(rows).toHaveLength(3);
    expect(left).toHaveLength(97);
    time.advance(1_000); // one row back at 60 a minute
    audit.record(time.nowMs(), { event: 'registration.refused', result: 'refused', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', spiffeId: 'spiffe://td/a' });
    expect(rows).toHaveLength(4);
    expect(rows[3]).toMatchObject({ suppressed: 97 });
    // Another ID, and the same ID's other event or other code, have their own budgets.
    audit.record(time.nowMs(), { event: 'registration.refused', result: 'refused', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', spiffeId: 'spiffe://td/b' });
    audit.record(time.nowMs(), { event: 'discovery.register_refused', result: 'refused', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', spiffeId: 'spiffe://td/a' });
    audit.record(time.nowMs(), { event: 'registration.refused', result: 'refused', code: 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED', spiffeId: 'spiffe://td/a' });
    expect(rows).toHaveLength(7);
  });

  test('callers without a proven ID: per address (any port), and all of them together', () => {
    const { time, rows, left, audit } = setup();
    for (let port = 1; port <= 10; port++) audit.record(time.nowMs(), { event: 'svid.refused', result: 'refused', code: 'TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN', caller: `10.0.0.1:${port}` });
    expect(rows).toHaveLength(3);
    for (let host = 2; host <= 20; host++) audit.record(time.nowMs(), { event: 'svid.refused', result: 'refused', caller: `10.0.0.${host}:1` });
    // 5 anonymous rows in all: the 3 of 10.0.0.1 and 2 more.
    expect(rows).toHaveLength(5);
    expect(left).toHaveLength(24);
  });

  test('issuances, operator actions and other events are never held back', () => {
    const { time, rows, left, audit } = setup();
    for (let i = 0; i < 50; i++) {
      audit.record(time.nowMs(), { event: 'svid.issued', result: 'issued', spiffeId: 'spiffe://td/a' });
      audit.record(time.nowMs(), { event: 'ca.intermediate_refused', result: 'refused', caller: 'admin.sock' });
    }
    expect(rows).toHaveLength(100);
    expect(left).toEqual([]);
  });
});
