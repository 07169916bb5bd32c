// Break-glass grants: an invalid request (bad pattern, no callers, out-of-range duration, no reason) is refused
// with TESSERA_ERR_BREAK_GLASS_INVALID naming the field and stores nothing; a valid one is stored, audited and
// published; on the clock's tick its expiry is audited and published exactly once, across a restart too.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { BreakGlass, type BreakGlassRequest, MAX_BREAK_GLASS_MS } from '../../../../control-plane/src/policy/break-glass.js';
import { openControlPlaneStore } from '../../../../control-plane/src/store/control-plane-store.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const REQ: BreakGlassRequest = { to: 'spiffe://example.org/ns/prod/sa/db', from: ['spiffe://example.org/ns/ops/*'], durationMs: 600_000, reason: ' incident 42 ', createdBy: 'alice' };

describe('BreakGlass', () => {
  const tmp = tempDirPerTest();

  function open(time: FakeTime) {
    const store = openControlPlaneStore(tmp.dir);
    const published: number[] = [];
    const bg = new BreakGlass(store.grants, store.audit, time, () => published.push(time.nowMs()));
    return { store, bg, published };
  }

  test.each([
    [{ to: 'not-an-id' }, 'to'],
    [{ to: '' }, 'to'],
    [{ from: [] }, 'from'],
    [{ from: ['spiffe://example.org/ok', 'http://x'] }, 'from'],
    [{ durationMs: 0 }, 'for'],
    [{ durationMs: MAX_BREAK_GLASS_MS + 1 }, 'for'],
    [{ durationMs: Number.NaN }, 'for'],
    [{ reason: '   ' }, 'reason'],
    [{ reason: 'x'.repeat(1001) }, 'reason'],
  ] as [Partial<BreakGlassRequest>, string][])('%j is refused on field %s, and nothing is stored or published', (bad, field) => {
    const { store, bg, published } = open(new FakeTime());
    try {
      bg.open({ ...REQ, ...bad });
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e) && [e.code, e.details['field']]).toEqual(['TESSERA_ERR_BREAK_GLASS_INVALID', field]);
    }
    expect(bg.active()).toEqual([]);
    expect(store.audit.recent('break_glass.')).toEqual([]);
    expect(published).toEqual([]);
    store.close();
  });

  test('an opened grant is active, audited and published; its expiry is audited and published once', () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const t0 = time.nowMs();
    let { store, bg, published } = open(time);
    const g = bg.open(REQ);
    expect(g).toMatchObject({ to: REQ.to, from: REQ.from, reason: 'incident 42', createdBy: 'alice', createdAtMs: t0, expiresAtMs: t0 + 600_000 });
    expect(g.id).toMatch(/^bg-[0-9a-f]{10}$/);
    expect(bg.active()).toEqual([g]);
    expect(published).toEqual([t0]);
    expect(store.audit.recent('break_glass.')[0]).toMatchObject({ event: 'break_glass.opened', grant: g.id, reason: 'incident 42', expiresAt: '2026-01-01T00:10:00.000Z' });

    time.advance(599_999);
    expect(bg.expire()).toBe(0);
    expect(bg.active()).toHaveLength(1);
    time.advance(1);
    expect(bg.active()).toEqual([]);
    expect(bg.expire()).toBe(1);
    expect(bg.expire()).toBe(0);
    expect(published).toEqual([t0, t0 + 600_000]);
    // A restart neither forgets that the expiry was audited nor audits it again.
    store.close();
    ({ store, bg, published } = open(time));
    expect(bg.expire()).toBe(0);
    expect(published).toEqual([]);
    expect(store.audit.recent('break_glass.').map((e) => e['event'])).toEqual(['break_glass.expired', 'break_glass.opened']);
    store.close();
  });
});
