// Where the CA's authorities are kept, as the CA manager sees it. Three kinds:
// - owner: this process alone keeps them (<dataDir>/ca, writable): it commits every change, intermediates included;
// - fixed: read-only roots (a Kubernetes Secret): each replica mints its own intermediates in memory, no changes;
// - shared: a database every replica commits to with compare-and-swap on a version; periodic work (rotating the
//   intermediate, removing unused retired authorities) is done by the leader only, the others follow its commits.
import type { KeyPair } from '../../../common/pki/keys.js';
import type { CaStateFile, LoadedAuthority } from './authority.js';
import type { AuthorityStore, MaterialFile } from './authority-store.js';

export type PersistenceMode = 'owner' | 'fixed' | 'shared';

export interface LoadedAuthorities {
  readonly state: CaStateFile;
  readonly authorities: readonly LoadedAuthority[];
  /** The key of a pending intermediate request (offline root), null when none is pending. */
  readonly pendingKey: KeyPair | null;
  /** The committed version (shared mode); null where there is one writer. */
  readonly version: number | null;
}

export interface AuthorityPersistence {
  readonly mode: PersistenceMode;
  /** Where the CA lives, for messages: a directory, or the database. */
  readonly where: string;
  load(): Promise<LoadedAuthorities | null>;
  /** Shared mode: the committed version alone, so a replica reads the whole CA only when it changed. */
  version?(): Promise<number | null>;
  /**
   * Writes the material, then the state. Shared mode: only if the committed version is still `expected` (else
   * TESSERA_ERR_CA_CONFLICT), and with `fenced` only while this replica still leads. Returns the new version.
   */
  commit(state: CaStateFile, material: readonly MaterialFile[], expected: number | null, fenced: boolean): Promise<number | null>;
}

/** The data dir's CA directory: owner when writable, fixed on a read-only mount. */
export function filePersistence(store: AuthorityStore): AuthorityPersistence {
  return {
    mode: store.readOnly ? 'fixed' : 'owner',
    where: store.dir,
    load: () => Promise.resolve(store.load()).then((l) => l && { ...l, version: null }),
    commit: (state, material) => {
      store.commit(state, material);
      return Promise.resolve(null);
    },
  };
}
