import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { grpcStatusName } from '../../../common/grpc-status-codes.js';
import { cutStatus, REFUSAL_REASONS, REFUSAL_REASON_NAMES, isRefusalReason, type RefusalReason, refusalGrpcStatus, refusalStatus, stalledByClient, unflushed } from '../../../common/refusal-reasons.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('refusal reasons', () => {
  test('docs/errors.md lists exactly the reasons, with the same HTTP statuses, gRPC status and meaning', () => {
    const section = doc.slice(doc.indexOf('## Refusal reasons'));
    const documented = new Map<string, { http: string; grpc: string; meaning: string }>();
    for (const m of section.matchAll(/^\| `([a-z0-9_]+)` \| ([^|]+) \| ([^|]+) \| (.*) \|$/gm)) {
      documented.set(m[1]!, { http: m[2]!, grpc: m[3]!, meaning: m[4]! });
    }
    expect([...documented.keys()].sort()).toEqual([...REFUSAL_REASON_NAMES].sort());
    for (const [reason, r] of Object.entries(REFUSAL_REASONS)) {
      const http = r.http.length === 0 ? '—' : r.http.join(', ');
      const grpc = r.grpc === null ? '—' : `\`${grpcStatusName(r.grpc)}\``;
      expect(documented.get(reason), reason).toEqual({ http, grpc, meaning: r.meaning });
    }
  });
  test('reasons are short snake_case tokens, safe as a header value and a metric label', () => {
    for (const reason of REFUSAL_REASON_NAMES) expect(reason).toMatch(/^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/);
  });
  test('every HTTP status is an error status and every gRPC status is a named one', () => {
    for (const [reason, r] of Object.entries(REFUSAL_REASONS)) {
      for (const s of r.http) expect(s >= 400 && s <= 599, `${reason}: ${s}`).toBe(true);
      if (r.grpc !== null) expect(grpcStatusName(r.grpc), reason).toBeDefined();
    }
  });
  test('lookups', () => {
    expect(isRefusalReason('authz_denied')).toBe(true);
    expect(isRefusalReason('toString')).toBe(false);
    expect(isRefusalReason('no_such_reason')).toBe(false);
    expect(refusalStatus('upstream_unavailable')).toBe(502);
    expect(refusalStatus('authz_denied')).toBe(403);
    expect(refusalGrpcStatus('authz_denied')).toBe(7);
    expect(refusalGrpcStatus('header_too_large')).toBe(2);
  });
});

describe('a deadline cut before the head: one status for HTTP/1.1 and HTTP/2 (audit 30c F1)', () => {
  test.each<[RefusalReason, boolean, boolean, number]>([
    // The client stalled its own request body (the upstream would take more): 408, never the upstream's 504.
    ['stream_idle_timeout', false, false, 408],
    // The upstream stopped reading the body (bytes wait for it, the client is held back): its stall, 504 (audit 32a F1).
    ['stream_idle_timeout', false, true, 504],
    ['stream_idle_timeout', true, false, 504],
    ['stream_idle_timeout', true, true, 504],
    ['request_timeout', true, false, 504],
    ['total_timeout', false, false, 504],
    ['total_timeout', false, true, 504],
    ['total_timeout', true, false, 504],
  ])('%s, request complete %s, held upstream %s → %i', (reason, complete, held, status) => {
    expect(cutStatus(reason, complete, held)).toBe(status);
    // Always one of the statuses docs/errors.md lists for the reason.
    expect(REFUSAL_REASONS[reason].http).toContain(status);
  });

  test.each<[string | undefined, boolean, boolean, boolean]>([
    ['stream_idle_timeout', false, false, true],
    ['stream_idle_timeout', false, true, false],
    ['stream_idle_timeout', true, false, false],
    ['stream_idle_timeout', true, true, false],
    ['request_timeout', false, false, false],
    ['total_timeout', false, false, false],
    ['downstream_closed', false, false, false],
    [undefined, false, false, false],
  ])('stalled by the client: flag %s, request complete %s, held upstream %s → %s', (flag, complete, held, stalled) => {
    expect(stalledByClient(flag, complete, held)).toBe(stalled);
  });

  test.each<[{ writableLength?: number; writableNeedDrain?: boolean } | undefined, boolean]>([
    [undefined, false],
    [{}, false],
    [{ writableLength: 0, writableNeedDrain: false }, false],
    [{ writableLength: 1 }, true],
    [{ writableLength: 0, writableNeedDrain: true }, true],
  ])('unflushed(%o) → %s', (w, held) => {
    expect(unflushed(w)).toBe(held);
  });
});
