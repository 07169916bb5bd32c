// The CA kept in the database the replicas share: the state document and the PEM it names are read in one snapshot
// and checked like files are (each key matches its certificate, each intermediate is issued by its root); a commit
// upserts the new material, deletes what the new state no longer names, and swaps the state by compare-and-swap.
import type { CaStateFile, CertWithKey } from './authority.js';
import { caCertFromPem, corrupt, keyFromPem, loadAuthority, pairFromPem, referencedNames } from './authority-material.js';
import type { AuthorityPersistence, LoadedAuthorities } from './authority-persistence.js';

/** The database side (store/postgres/pg-authority-records.ts), as much of it as the CA needs. */
export interface SharedAuthorityRecords {
  load(): Promise<{ readonly state: unknown; readonly material: Map<string, string>; readonly version: number } | null>;
  version(): Promise<number | null>;
  commit(state: unknown, material: readonly { name: string; pem: string }[], expectedVersion: number | null, fence?: { readonly term: number }, remove?: readonly string[]): Promise<number>;
}

export interface SharedAuthorityOptions {
  readonly records: SharedAuthorityRecords;
  /** The database as messages may name it (no password). */
  readonly where: string;
  /** This replica's leader term, null when it does not lead (fenced commits are refused then). */
  readonly leaderTerm: () => number | null;
}

export function sharedPersistence(o: SharedAuthorityOptions): AuthorityPersistence {
  const where = `${o.where} (ca_state)`;
  let named = new Set<string>();
  return {
    mode: 'shared',
    where: o.where,
    version: () => o.records.version(),
    load: async (): Promise<LoadedAuthorities | null> => {
      const got = await o.records.load();
      if (!got) return null;
      const state = got.state as CaStateFile;
      if (state === null || typeof state !== 'object' || state.version !== 1 || !Array.isArray(state.authorities)) throw corrupt(`${where}: unknown format`);
      const label = (name: string) => `${o.where} ca_material/${name}`;
      const pem = (name: string): string => {
        const text = got.material.get(name);
        if (text === undefined) throw corrupt(`${where} names ${name}, which ca_material does not hold`);
        return text;
      };
      const pair = (certName: string, keyName: string): CertWithKey => pairFromPem(pem(certName), pem(keyName), { cert: label(certName), key: label(keyName) });
      const authorities = state.authorities.map((a) => loadAuthority(a, where, { pair, cert: (c) => caCertFromPem(pem(c), label(c)) }, label));
      const pending = state.pendingIntermediate;
      const pendingKey = pending ? keyFromPem(pem(pending.keyFile), label(pending.keyFile)) : null;
      named = referencedNames(state.authorities, pending);
      return { state, authorities, pendingKey, version: got.version };
    },
    commit: async (state, material, expected, fenced) => {
      let fence: { term: number } | undefined;
      if (fenced) {
        const term = o.leaderTerm();
        // Not leading (any more): the same refusal a stale term gets from the database.
        fence = { term: term ?? -1 };
      }
      const keep = referencedNames(state.authorities, state.pendingIntermediate);
      const remove = [...named].filter((n) => !keep.has(n));
      const version = await o.records.commit(state, material.map((m) => ({ name: m.name, pem: m.text })), expected, fence, remove);
      named = keep;
      return version;
    },
  };
}
