// Opens the control plane's PostgreSQL store against a test server the way a replica does (real clock, real
// timers, a data dir of its own for the local audit.log), with a log that records every line for assertions.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../common/clock.js';
import { openPostgresStore, type PostgresStore, type PostgresStoreDeps } from '../../control-plane/src/store/postgres/open-postgres-store.js';
import { realTimers } from '../../shared-io/timers.js';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

export function recordingLog(): { lines: LogLine[]; info: (o: Record<string, unknown>, m: string) => void; warn: (o: Record<string, unknown>, m: string) => void; error: (o: Record<string, unknown>, m: string) => void } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

export interface TestPgStore {
  readonly store: PostgresStore;
  readonly dataDir: string;
  readonly log: ReturnType<typeof recordingLog>;
  /** Closes the store (if still open) and removes its data dir. */
  dispose(): Promise<void>;
}

let counter = 0;

export async function openTestPgStore(url: string, over: Partial<PostgresStoreDeps> = {}): Promise<TestPgStore> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tessera-pgstore-'));
  const log = recordingLog();
  const replica = over.replica ?? `test-replica-${process.pid}-${++counter}`;
  let store: PostgresStore;
  try {
    store = await openPostgresStore({ url }, { clock: systemClock, timers: realTimers, log, dataDir, replica, ...over });
  } catch (e) {
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  let closed = false;
  return {
    store,
    dataDir,
    log,
    async dispose() {
      if (!closed) await store.close().catch(() => undefined);
      closed = true;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
