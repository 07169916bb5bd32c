// The RSA key rules (common/pki/rsa-key-strength.ts) as the control plane runs them for CSRs and federated bundles:
// on one worker thread (rsa-key-worker.ts), with one bounded memory of verdicts (common/pki/rsa-key-verdicts.ts), so
// a key is judged once and never on the event loop that serves the mesh; a CSR's key, which a caller waits on, goes
// before the bundles' keys.
import type { KeyObject } from 'node:crypto';
import { RsaKeyVerdicts } from '../../../common/pki/rsa-key-verdicts.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { UndoStack } from '../../../common/undo-stack.js';
import { RsaKeyWorker } from './rsa-key-worker.js';

export interface RsaKeyChecks {
  /** Why a CSR's key must not be certified, or null (judged before the bundles' keys). */
  readonly csrKey: (key: KeyObject, gone?: () => boolean) => Promise<string | null>;
  /** Why a federated bundle's key must not be trusted, or null. */
  readonly bundleKey: (key: KeyObject) => Promise<string | null>;
  /** Stops the thread; what is queued is refused. */
  close(): Promise<void>;
}

/** The checks, closed again by `undo` when the start fails. */
export function openRsaKeyChecks(timers: Timers, undo: Pick<UndoStack, 'push'>): RsaKeyChecks {
  const worker = new RsaKeyWorker({ timers });
  undo.push(() => worker.close());
  const verdicts = new RsaKeyVerdicts({ judge: worker.judge });
  return { csrKey: (key, gone) => verdicts.weakness(key, true, gone), bundleKey: (key) => verdicts.weakness(key), close: () => worker.close() };
}
