// An in-memory InventoryStore.livePage over fixed rows, for the dashboard's unit tests: the unexpired rows in
// (notAfterMs, serial) order after the cursor, at most `limit`, as the SQLite and PostgreSQL stores answer it.
import type { InventoryStore, IssuedSvidRow } from '../../control-plane/src/store/store-contract.js';

export function livePages(rows: () => readonly IssuedSvidRow[]): Pick<InventoryStore, 'livePage'>['livePage'] {
  const key = (r: Pick<IssuedSvidRow, 'notAfterMs' | 'serial'>) => [r.notAfterMs, r.serial] as const;
  const before = (a: readonly [number, string], b: readonly [number, string]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  return async (nowMs, after, limit) =>
    rows()
      .filter((r) => r.notAfterMs > nowMs && (!after || before(key(after), key(r))))
      .sort((a, b) => (before(key(a), key(b)) ? -1 : before(key(b), key(a)) ? 1 : 0))
      .slice(0, limit);
}
