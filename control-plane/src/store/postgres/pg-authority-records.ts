// The CA state every replica shares, in PostgreSQL: one versioned JSON document (ca_state, a single row) and the
// PEM material it names (ca_material). A commit is compare-and-swap on the version inside one transaction that
// locks the row (SELECT .. FOR UPDATE): a replica that read an older version gets TESSERA_ERR_CA_CONFLICT and
// must reload; with a fencing term it must also still be the leader (leader_term), or nothing is written.
import { TesseraError } from '../../../../common/errors.js';
import type { PgDatabase, PgQueryable } from './pg-database.js';

export interface AuthorityRecords {
  readonly state: unknown;
  readonly material: Map<string, string>;
  readonly version: number;
}

export interface MaterialRecord {
  readonly name: string;
  readonly pem: string;
}

const UNIQUE_VIOLATION = '23505';

export function conflict(message: string, details: Record<string, unknown>): TesseraError {
  return new TesseraError('TESSERA_ERR_CA_CONFLICT', message, details);
}

export class PgAuthorityRecords {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  /** The committed state, all its material, and its version; null before the first commit. */
  async load(): Promise<AuthorityRecords | null> {
    // One snapshot for both tables: the state and the material it names are always read as committed together.
    return this.#db.tx(async (q) => {
      await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const row = (await q.query<{ version: number; state_json: string }>('SELECT version, state_json FROM ca_state WHERE id = 1')).rows[0];
      if (!row) return null;
      const material = new Map<string, string>();
      for (const m of (await q.query<{ name: string; pem: string }>('SELECT name, pem FROM ca_material ORDER BY name')).rows) material.set(m.name, m.pem);
      return { state: JSON.parse(row.state_json) as unknown, material, version: row.version };
    });
  }

  /** The committed version alone (null before the first commit): what a replica checks before reloading. */
  async version(): Promise<number | null> {
    return (await this.#db.query<{ version: number }>('SELECT version FROM ca_state WHERE id = 1')).rows[0]?.version ?? null;
  }

  /**
   * Writes `state` as the next version if the committed one is still `expectedVersion` (null: nothing committed yet),
   * upserts `material`, deletes the material named in `remove`, and returns the new version. Material not named is
   * kept. With `fence`, the caller's leader term must still be the current one.
   */
  async commit(state: unknown, material: readonly MaterialRecord[], expectedVersion: number | null, fence?: { readonly term: number }, remove: readonly string[] = []): Promise<number> {
    const stateJson = JSON.stringify(state);
    try {
      return await this.#db.tx(async (q) => {
        if (fence) await checkFence(q, fence.term);
        const current = (await q.query<{ version: number }>('SELECT version FROM ca_state WHERE id = 1 FOR UPDATE')).rows[0]?.version ?? null;
        if (current !== expectedVersion) {
          throw conflict(`the CA state is at version ${current ?? 'none'}, not ${expectedVersion ?? 'none'}: another replica committed first`, { expectedVersion, version: current });
        }
        const next = (current ?? 0) + 1;
        if (current === null) await q.query('INSERT INTO ca_state (id, version, state_json) VALUES (1, $1, $2)', [next, stateJson]);
        else await q.query('UPDATE ca_state SET version = $1, state_json = $2 WHERE id = 1', [next, stateJson]);
        for (const m of material) {
          await q.query('INSERT INTO ca_material (name, pem) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET pem = EXCLUDED.pem', [m.name, m.pem]);
        }
        if (remove.length > 0) await q.query('DELETE FROM ca_material WHERE name = ANY($1::TEXT[])', [remove]);
        return next;
      });
    } catch (e) {
      // Two first commits at once: both saw no row, one INSERT loses on the key. That is the same conflict.
      if ((e as { code?: unknown }).code === UNIQUE_VIOLATION && expectedVersion === null) {
        throw conflict('the CA state was created by another replica first', { expectedVersion, version: null });
      }
      throw e;
    }
  }
}

/** Locks the leader_term row for the transaction: a new leader's term bump waits until this commit is done. */
export async function checkFence(q: PgQueryable, term: number): Promise<void> {
  const current = (await q.query<{ term: number }>('SELECT term FROM leader_term WHERE id = 1 FOR SHARE')).rows[0]?.term ?? null;
  if (current !== term) {
    throw conflict(`this replica's leader term ${term} is stale (the current term is ${current ?? 'none'}): another replica leads now`, { term, currentTerm: current, reason: 'stale_term' });
  }
}
