// Replicas sharing the CA by compare-and-swap (the PostgreSQL store's contract, kept in memory here): a replica that
// was behind reloads after a conflict, and when a third commit lands between its reload and its retry it reloads
// again, so a prepare racing another one ends as TESSERA_ERR_CA_ALREADY_PREPARED (the true answer), not as
// TESSERA_ERR_CA_CONFLICT; a replica that keeps losing still gets the conflict after a bounded number of tries.
import { describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { isTesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { type SharedAuthorityRecords, sharedPersistence } from '../../../../control-plane/src/ca/shared-authority-store.js';
import { conflict } from '../../../../control-plane/src/store/postgres/pg-authority-records.js';
import { DAY_MS } from '../../../helpers/control-plane-parts.js';

const TD = TrustDomain.parse('example.org');

/** One shared row: state, material and a version, committed by compare-and-swap as the database does. */
class MemoryRecords implements SharedAuthorityRecords {
  state: unknown = null;
  material = new Map<string, string>();
  current: number | null = null;

  async load() {
    return this.current === null ? null : { state: structuredClone(this.state), material: new Map(this.material), version: this.current };
  }

  async version() {
    return this.current;
  }

  async commit(state: unknown, material: readonly { name: string; pem: string }[], expected: number | null, _fence?: { readonly term: number }, remove: readonly string[] = []) {
    if (expected !== this.current) throw conflict('the CA state moved on', { expected, current: this.current });
    this.state = structuredClone(state);
    for (const m of material) this.material.set(m.name, m.pem);
    for (const n of remove) this.material.delete(n);
    this.current = (this.current ?? 0) + 1;
    return this.current;
  }
}

/** A replica's view of the shared row; `onLoad` runs after a load has read it and before the replica sees it. */
function replica(records: SharedAuthorityRecords, onLoad?: () => Promise<void>): Promise<CaManager> {
  const view: SharedAuthorityRecords = {
    load: async () => {
      const got = await records.load();
      await onLoad?.();
      return got;
    },
    version: () => records.version(),
    commit: (...args) => records.commit(...args),
  };
  return CaManager.open({
    store: sharedPersistence({ records: view, where: 'memory', leaderTerm: () => 1 }),
    leads: () => false,
    trustDomain: TD,
    lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: DAY_MS },
    clock: systemClock,
    liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
  });
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isTesseraError(e) ? e.code : String(e)));

describe('CA mutations on a shared store', () => {
  test('behind, then beaten again after its reload: the prepare ends as ALREADY_PREPARED, not CONFLICT', async () => {
    const records = new MemoryRecords();
    const a = await replica(records);
    let raceOnReload: (() => Promise<void>) | null = null;
    const b = await replica(records, async () => {
      const race = raceOnReload;
      raceOnReload = null;
      await race?.();
    });
    // a moves the state on (prepare, activate) while b still holds the first version.
    await a.prepare();
    await a.activate();
    // b's prepare conflicts (it is behind); while it reloads, a prepares: b's retry, planned on what it just read,
    // conflicts again; the next reload shows a's prepared authority.
    let aPrepared = '';
    raceOnReload = async () => {
      aPrepared = (await a.prepare()).id;
    };
    expect(await codeOf(b.prepare())).toBe('TESSERA_ERR_CA_ALREADY_PREPARED');
    expect(aPrepared).not.toBe('');
    expect(b.current().authorities.map((x) => `${x.record.id}:${x.record.state}`)).toContain(`${aPrepared}:prepared`);
  });

  test('a replica that loses every race gets TESSERA_ERR_CA_CONFLICT after five tries', async () => {
    const records = new MemoryRecords();
    const a = await replica(records);
    let attempts = 0;
    const counted: SharedAuthorityRecords = {
      load: () => records.load(),
      version: () => records.version(),
      commit: (...args) => {
        attempts++;
        return records.commit(...args);
      },
    };
    // Every load of b is followed by another replica's commit (the same state again): b is always one behind.
    const b = await replica(counted, async () => {
      await records.commit(records.state, [], records.current);
    });
    expect(await codeOf(b.prepare())).toBe('TESSERA_ERR_CA_CONFLICT');
    expect(attempts).toBe(5);
    expect(a.current().authorities).toHaveLength(1);
  });
});
