// Log lines for an SVID nobody in this process renews (identity.files): a warning once 90 % of its lifetime has
// passed, and an error when it expires (/ready turns 503 then and peers refuse it).
// Before, the log said nothing at all: the first clue was other proxies refusing this one (audit 57b F1).
import type { Logger } from 'pino';
import type { Timers } from '../../../shared-io/timers.js';
import type { IdentityStore } from './identity-store.js';

/** Node's timers hold at most 2^31−1 ms (~24.8 days): a longer wait is taken in steps. */
const MAX_WAIT_MS = 2_147_483_647;

/** Arms the two lines for each SVID the store installs; returns the stop function. */
export function watchSvidExpiry(store: IdentityStore, o: { readonly nowMs: () => number; readonly timers: Timers; readonly log: Logger; readonly certFile: string }): () => void {
  let timer: unknown;
  // Keyed by the SVID (serial and NotAfter), not the snapshot: a new bundle alone makes a new snapshot of the same
  // SVID, which must not say it all again (audit 57d F2).
  let warned = '';
  let expired = '';
  const arm = (): void => {
    if (timer !== undefined) o.timers.clearTimeout(timer);
    timer = undefined;
    const s = store.current;
    if (!s) return;
    const now = o.nowMs();
    const svid = `${s.serial}/${s.notAfterMs}`;
    const fields = { certFile: o.certFile, serial: s.serial, notAfter: new Date(s.notAfterMs).toISOString() };
    if (now >= s.notAfterMs) {
      if (expired !== svid) o.log.error(fields, 'the SVID from files has expired: not ready, and peers refuse it, until new files are written');
      expired = svid;
      return;
    }
    const warnAt = s.notBeforeMs + Math.floor((s.notAfterMs - s.notBeforeMs) * 0.9);
    if (now >= warnAt && warned !== svid) {
      warned = svid;
      o.log.warn(fields, 'the SVID from files expires soon: 90 % of its lifetime has passed; write newer files before NotAfter');
    }
    const at = now < warnAt ? warnAt : s.notAfterMs;
    timer = o.timers.setTimeout(() => {
      timer = undefined;
      if (store.current === s) arm();
    }, Math.min(at - now, MAX_WAIT_MS));
  };
  const unsubscribe = store.subscribe(arm);
  arm();
  return () => {
    unsubscribe();
    if (timer !== undefined) o.timers.clearTimeout(timer);
  };
}
