// The JWT-SVID signing keys kept in the database the replicas share: one document holding the key list and each
// key's PEM, checked at load like files are (each key is the one its kid names), committed by compare-and-swap.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { type JwtKeyBackend, type JwtKeyRecord, jwkThumbprint } from './jwt-key-backend.js';

/** The database side (store/postgres/pg-jwt-key-records.ts), as much of it as the keys need. */
export interface SharedJwtKeyRecords {
  load(): Promise<{ readonly state: unknown; readonly version: number } | null>;
  version(): Promise<number | null>;
  commit(state: unknown, expectedVersion: number | null, fence?: { readonly term: number }): Promise<number>;
}

interface StoredKey extends JwtKeyRecord {
  readonly pem: string;
}

export function sharedJwtKeys(records: SharedJwtKeyRecords, where: string, leaderTerm: () => number | null): JwtKeyBackend {
  const corrupt = (message: string) => new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${where} (jwt_keys_state): ${message}`);
  return {
    shared: true,
    version: () => records.version(),
    load: async () => {
      const got = await records.load();
      if (!got) return null;
      const stored = (got.state as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(stored)) throw corrupt('no keys array');
      const keys = new Map(
        (stored as StoredKey[]).map((s) => {
          try {
            const key = createPrivateKey(s.pem);
            if (jwkThumbprint(createPublicKey(key)) !== s.kid) throw new Error('the key is not the one its kid names');
            return [s.kid, key] as const;
          } catch (e) {
            throw corrupt(`key ${String(s?.kid)}: ${(e as Error).message}`);
          }
        }),
      );
      const list = (stored as StoredKey[]).map(({ pem: _pem, ...r }) => r);
      return { records: list, keys, version: got.version };
    },
    save: async (next, _change, expected, fenced) => {
      const keys = next.records.map((r): StoredKey => ({ ...r, pem: next.keys.get(r.kid)!.export({ type: 'pkcs8', format: 'pem' }) as string }));
      // Not leading (any more): the same refusal a stale term gets from the database.
      return records.commit({ keys }, expected, fenced ? { term: leaderTerm() ?? -1 } : undefined);
    },
  };
}
