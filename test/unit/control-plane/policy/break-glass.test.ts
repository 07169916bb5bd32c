// Break-glass grants: an invalid request (bad pattern, no callers, out-of-range duration, no reason) is refused
// with TESSERA_ERR_BREAK_GLASS_INVALID naming the field and stores nothing; a valid one is stored, audited and
// published (and announced); on the clock's tick its expiry is audited and published exactly once, across a restart
// and across replicas too (whichever marks it audits it); a grant opened on another replica is served after a reload.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { announcer } from '../../../../control-plane/src/lifecycle/follow-changes.js';
import { BreakGlass, type BreakGlassRequest, MAX_BREAK_GLASS_MS } from '../../../../control-plane/src/policy/break-glass.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { loud } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const REQ: BreakGlassRequest = { to: 'spiffe://example.org/ns/prod/sa/db', from: ['spiffe://example.org/ns/ops/*'], durationMs: 600_000, reason: ' incident 42 ', createdBy: 'alice' };

describe('BreakGlass', () => {
  const tmp = tempDirPerTest();

  async function open(time: FakeTime, on?: ControlPlaneStore) {
    const store = on ?? (await openSqliteStore(tmp.dir));
    const published: number[] = [];
    const bg = await BreakGlass.open({ store: store.grants, audit: store.audit, clock: time, onChange: () => published.push(time.nowMs()), announce: announcer(store.changes, loud)('grants') });
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
  ] as [Partial<BreakGlassRequest>, string][])('%j is refused on field %s, and nothing is stored or published', async (bad, field) => {
    const { store, bg, published } = await open(new FakeTime());
    try {
      await bg.open({ ...REQ, ...bad });
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e) && [e.code, e.details['field']]).toEqual(['TESSERA_ERR_BREAK_GLASS_INVALID', field]);
    }
    expect(bg.active()).toEqual([]);
    expect(await store.grants.active(0)).toEqual([]);
    expect(await store.audit.recent('break_glass.')).toEqual([]);
    expect(published).toEqual([]);
    await store.close();
  });

  test('a pattern over 2048 bytes (SPIFFE-ID §2.3; no SVID carries it, so the grant could never apply) is refused naming its code', async () => {
    const long = `spiffe://example.org/${'a'.repeat(2049 - 21)}`;
    const { store, bg } = await open(new FakeTime());
    for (const [bad, field] of [[{ to: long }, 'to'], [{ from: [REQ.from[0]!, long] }, 'from']] as const) {
      const e = await bg.open({ ...REQ, ...bad }).then(() => undefined, (x: unknown) => x);
      expect(isTesseraError(e) && [e.code, e.details['field']]).toEqual(['TESSERA_ERR_BREAK_GLASS_INVALID', field]);
      expect((e as Error).message).toContain('TESSERA_ERR_SPIFFE_ID_TOO_LONG');
    }
    expect(await store.grants.active(0)).toEqual([]);
    await store.close();
  });

  test('an opened grant is active, audited, published and announced; its expiry is audited and published once', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const t0 = time.nowMs();
    let { store, bg, published } = await open(time);
    let announced = 0;
    store.changes.subscribe('grants', () => announced++);
    const g = await bg.open(REQ);
    expect(g).toMatchObject({ to: REQ.to, from: REQ.from, reason: 'incident 42', createdBy: 'alice', createdAtMs: t0, expiresAtMs: t0 + 600_000 });
    expect(g.id).toMatch(/^bg-[0-9a-f]{10}$/);
    expect(bg.active()).toEqual([g]);
    expect(published).toEqual([t0]);
    await Promise.resolve();
    expect(announced).toBe(1);
    expect((await store.audit.recent('break_glass.'))[0]).toMatchObject({ event: 'break_glass.opened', grant: g.id, reason: 'incident 42', expiresAt: '2026-01-01T00:10:00.000Z' });

    time.advance(599_999);
    expect(await bg.expire()).toBe(0);
    expect(bg.active()).toHaveLength(1);
    time.advance(1);
    expect(bg.active()).toEqual([]);
    expect(await bg.expire()).toBe(1);
    expect(await bg.expire()).toBe(0);
    expect(published).toEqual([t0, t0 + 600_000]);
    // A restart neither forgets that the expiry was audited nor audits it again.
    await store.close();
    ({ store, bg, published } = await open(time));
    expect(await bg.expire()).toBe(0);
    expect(published).toEqual([]);
    expect((await store.audit.recent('break_glass.')).map((e) => e['event'])).toEqual(['break_glass.expired', 'break_glass.opened']);
    await store.close();
  });

  test('two replicas on one store: a grant opened on one is served by the other after a reload; its expiry is audited once', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const one = await open(time);
    const two = await open(time, one.store);
    const g = await one.bg.open(REQ);
    expect(two.bg.active()).toEqual([]);
    await two.bg.reload();
    expect(two.bg.active()).toEqual([g]);
    expect(two.published).toHaveLength(1);
    // A reload that finds nothing new publishes nothing.
    await two.bg.reload();
    expect(two.published).toHaveLength(1);
    time.advance(600_000);
    const audited = (await Promise.all([one.bg.expire(), two.bg.expire()])).reduce((a, b) => a + b, 0);
    expect(audited).toBe(1);
    // Both stop serving it and publish that.
    expect([one.bg.active(), two.bg.active()]).toEqual([[], []]);
    expect(two.published).toHaveLength(2);
    expect((await one.store.audit.recent('break_glass.expired')).map((e) => e['grant'])).toEqual([g.id]);
    await one.store.close();
  });
});
