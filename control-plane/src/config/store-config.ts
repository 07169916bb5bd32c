// The `store` section of the control plane's config (DESIGN.md section 12): the embedded SQLite file (default, one
// process) or a PostgreSQL database shared by any number of replicas. The URL may carry a password, so it can come
// from a file (a mounted Secret) instead of the config.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { parsePgUrl } from '../store/postgres/pg-connection-config.js';

/** The keys of a shared database: with `kind: sqlite` (the default) they are refused where written, never filled in. */
const POSTGRES = { key: 'kind', is: 'postgres' } as const;

export const STORE_SCHEMA: ObjectSchema = {
  type: 'object',
  absentAsEmpty: true,
  description: 'Where the control plane keeps its state (DESIGN.md section 12)',
  properties: {
    kind: { type: 'string', enum: ['sqlite', 'postgres'], default: 'sqlite', description: 'sqlite: <dataDir>/tessera.db, one process; postgres: shared by every replica' },
    url: { type: 'string', minLength: 1, onlyWhen: POSTGRES, description: 'postgres only: postgres://user:password@host:port/db?sslmode=verify-full&sslrootcert=FILE (no sslmode = plaintext)' },
    urlFile: { type: 'string', minLength: 1, onlyWhen: POSTGRES, description: 'postgres only: a file holding the URL (a Secret), read once at start' },
    replica: { type: 'string', minLength: 1, description: 'This replica\'s name in the database (leader, audit, registrations); default <hostname>/<pid>' },
    maxConnections: { type: 'number', integer: true, min: 1, max: 100, default: 10, onlyWhen: POSTGRES, description: 'postgres only: pooled connections (plus one for change notifications and one for the leader lock)' },
    statementTimeout: { type: 'duration', min: 100, max: 300_000, default: '10s', onlyWhen: POSTGRES, description: 'postgres only: a statement running longer is cancelled and the call fails UNAVAILABLE' },
    leaderLease: { type: 'duration', min: 2_000, max: 600_000, default: '30s', onlyWhen: POSTGRES, description: 'postgres only: a leader that has not renewed for this long (a frozen process) is replaced by another replica' },
  },
};

export type StoreSettings =
  | { readonly kind: 'sqlite' }
  | {
      readonly kind: 'postgres';
      readonly source: { readonly url: string } | { readonly urlFile: string };
      readonly replica: string;
      readonly maxConnections: number;
      readonly statementTimeoutMs: number;
      readonly leaderLeaseMs: number;
    };

/** The section as the schema gives it: `kind` always, the postgres keys' defaults filled in with kind: postgres. */
export type StoreInput =
  | { kind: 'sqlite'; replica?: string }
  | { kind: 'postgres'; url?: string; urlFile?: string; replica?: string; maxConnections: number; statementTimeout: number; leaderLease: number };

/** Resolves the section; `problem` builds the coded config error for a key. */
export function resolveStoreConfig(raw: StoreInput, base: string, problem: (key: string, message: string) => Error): StoreSettings {
  // The postgres-only keys were refused by the schema where written for sqlite (onlyWhen).
  if (raw.kind === 'sqlite') return { kind: 'sqlite' };
  const { url, urlFile } = raw;
  if ((url === undefined) === (urlFile === undefined)) throw problem('store', 'kind: postgres needs exactly one of url or urlFile');
  if (url !== undefined) {
    try {
      parsePgUrl(url.trim());
    } catch (e) {
      throw problem('store.url', (e as Error).message.replace(/^store\.url /, ''));
    }
  }
  return {
    kind: raw.kind,
    source: url !== undefined ? { url } : { urlFile: resolve(base, urlFile!) },
    replica: raw.replica ?? `${hostname()}/${process.pid}`,
    maxConnections: raw.maxConnections,
    statementTimeoutMs: raw.statementTimeout,
    leaderLeaseMs: raw.leaderLease,
  };
}
