// Opens the JWT-SVID signing keys from the data dir: every key change (created, retired, removed) is audited and
// logged, then handed on (bundle.spiffe.json, config push). maintain() runs with the CA's periodic upkeep.
import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import { JWT_SKEW_MS } from '../../../common/spiffe/jwt-svid.js';
import { JWT_SVID_MAX_TTL_MS } from '../api/jwt-svid-service.js';
import type { AuditLog } from '../store/store-contract.js';
import { type JwtKeyEvent, JwtKeys } from './jwt-keys.js';

/** The active JWT key signs for a day; its successor takes over and it stays published for the overlap. */
export const JWT_KEY_ROTATE_EVERY_MS = 24 * 3_600_000;

export interface OpenJwtKeysOptions {
  readonly dataDir: string;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly log: { info(obj: Record<string, unknown>, msg: string): void };
  readonly rotateEveryMs?: number;
  /** After each change has been audited (not for the first key created during open: the caller writes at start). */
  readonly onChange: () => void;
}

export interface OpenedJwtKeys {
  readonly keys: JwtKeys;
  /** Rotates a key past its period and drops retired keys past their overlap; reports a change. */
  maintain(): void;
}

export function openJwtKeys(o: OpenJwtKeysOptions): OpenedJwtKeys {
  const report = (events: readonly JwtKeyEvent[]) => {
    for (const e of events) {
      o.audit.record(o.clock.nowMs(), { event: e.event, result: 'ok', caller: 'control-plane', kid: e.kid });
      o.log.info({ event: e.event, kid: e.kid }, 'JWT signing key changed');
    }
  };
  const { keys, events } = JwtKeys.open({
    dir: join(o.dataDir, 'jwt'),
    clock: o.clock,
    rotateEveryMs: o.rotateEveryMs ?? JWT_KEY_ROTATE_EVERY_MS,
    // A retired key must outlive every token it signed, and validators' tolerance of a late exp.
    overlapMs: JWT_SVID_MAX_TTL_MS + JWT_SKEW_MS,
  });
  report(events);
  return {
    keys,
    maintain() {
      const changed = keys.maintain();
      if (changed.length === 0) return;
      report(changed);
      o.onChange();
    },
  };
}
