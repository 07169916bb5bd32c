// Opens the JWT-SVID signing keys, from the data dir or from the replicas' shared database: every key change this
// process makes (created, retired, removed) is audited and logged, then handed on (bundle.spiffe.json, config push)
// and announced to the other replicas; a change another replica made arrives through refresh(). maintain() runs
// with the CA's periodic upkeep. On a read-only CA (a Secret replicas share, nothing else) the keys are derived
// from the CA's keys instead (derived-jwt-keys.ts), so that every replica signs and publishes the same ones.
import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import { JWT_SKEW_MS } from '../../../common/spiffe/jwt-svid.js';
import { JWT_SVID_MAX_TTL_MS } from '../api/jwt-svid-service.js';
import type { AuditLog } from '../store/store-contract.js';
import type { LoadedAuthority } from './authority.js';
import { DerivedJwtKeys } from './derived-jwt-keys.js';
import type { JwtKeyBackend } from './jwt-key-backend.js';
import { jwtKeyFiles } from './jwt-key-files.js';
import { jwtKeyFileNames, readJwtKeyFiles, SecretJwtKeys } from './jwt-key-secret.js';
import { type JwtKeyEvent, type JwtKeySet, JwtKeys } from './jwt-keys.js';

/** The active JWT key signs for a day; its successor takes over and it stays published for the overlap. */
export const JWT_KEY_ROTATE_EVERY_MS = 24 * 3_600_000;

export interface OpenJwtKeysOptions {
  readonly dataDir: string;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /**
   * A read-only CA (persistence `fixed`): its authorities, read once (it changes only with a restart), and the trust
   * domain the keys are derived for. Nothing is written to the data dir then.
   */
  readonly derivedFrom?: { readonly trustDomain: string; readonly authorities: () => readonly LoadedAuthority[] };
  readonly log: { info(obj: Record<string, unknown>, msg: string): void; warn(obj: Record<string, unknown>, msg: string): void };
  readonly rotateEveryMs?: number;
  /** The replicas' shared database instead of <dataDir>/jwt, and whether this replica leads (rotates). */
  readonly shared?: { readonly backend: JwtKeyBackend; readonly leads: () => boolean };
  /** After this replica committed a change: tell the other replicas (they refresh). */
  readonly announce?: () => void;
  /** After each change has been audited (not for the first key created during open: the caller writes at start). */
  readonly onChange: () => void;
}

export interface OpenedJwtKeys {
  readonly keys: JwtKeySet;
  /** Rotates a key past its period and drops retired keys past their overlap; reports a change. */
  maintain(): Promise<void>;
  /** Takes what another replica committed; reports a change. */
  refresh(): Promise<void>;
}

export async function openJwtKeys(o: OpenJwtKeysOptions): Promise<OpenedJwtKeys> {
  if (o.derivedFrom) return derivedJwtKeys(o, o.derivedFrom);
  // An operator who put key files in a writable CA directory meant them to sign: say they do not (audit 61k I1).
  const ignored = jwtKeyFileNames(join(o.dataDir, 'ca'));
  if (ignored.length > 0) o.log.warn({ event: 'jwt_key.files_ignored', code: 'TESSERA_ERR_JWT_KEY_FILES_IGNORED', files: ignored }, 'jwt-signing-key files in a writable CA directory are not read: this control plane signs with its own rotated keys (jwt/ or the shared database); they are read only from a read-only CA directory (ca.persistence fixed)');
  const report = (events: readonly JwtKeyEvent[]) => {
    for (const e of events) {
      o.audit.record(o.clock.nowMs(), { event: e.event, result: 'ok', caller: 'control-plane', kid: e.kid });
      o.log.info({ event: e.event, kid: e.kid }, 'JWT signing key changed');
    }
  };
  const { keys, events } = await JwtKeys.open({
    backend: o.shared?.backend ?? jwtKeyFiles(join(o.dataDir, 'jwt')),
    ...(o.shared ? { leads: o.shared.leads } : {}),
    clock: o.clock,
    rotateEveryMs: o.rotateEveryMs ?? JWT_KEY_ROTATE_EVERY_MS,
    // A retired key must outlive every token it signed, and validators' tolerance of a late exp.
    overlapMs: JWT_SVID_MAX_TTL_MS + JWT_SKEW_MS,
  });
  report(events);
  if (events.length > 0) o.announce?.();
  return {
    keys,
    async maintain() {
      const changed = await keys.maintain();
      if (changed.length === 0) return;
      report(changed);
      o.announce?.();
      o.onChange();
    },
    async refresh() {
      if (await keys.refresh()) o.onChange();
    },
  };
}

function derivedJwtKeys(o: OpenJwtKeysOptions, from: NonNullable<OpenJwtKeysOptions['derivedFrom']>): OpenedJwtKeys {
  const keys = new DerivedJwtKeys(from.trustDomain, from.authorities());
  // Keys of their own in the Secret, when it carries them (jwt-key-secret.ts), read at start; the derived ones stay
  // published beside them.
  const files = readJwtKeyFiles(join(o.dataDir, 'ca'));
  if (files) {
    const own = new SecretJwtKeys(files, keys);
    o.log.info({ event: 'jwt_key.from_files', active: own.active().keyId, published: own.published().map((k) => k.keyId) }, 'JWT-SVID signing keys from the read-only CA directory (jwt-signing-key*.pem) and derived from its CA keys');
    return { keys: own, async maintain() {}, async refresh() {} };
  }
  o.log.info({ event: 'jwt_key.derived', keys: keys.sources() }, 'JWT-SVID signing keys derived from the read-only CA: every replica loading it signs and publishes the same ones');
  // A read-only CA changes only with a restart: nothing to maintain or refresh, with the files or without.
  return { keys, async maintain() {}, async refresh() {} };
}
