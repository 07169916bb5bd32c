// How the bench runs its processes: each in its own process group (a stop reaches nginx workers, Ctrl-C in the
// terminal does not), output straight to `<name>.log` in the work dir, a 3 s stop grace, stopped on abort.
import { ProcessSupervisor } from '../../shared-io/process-supervisor.js';

export function benchProcesses(logDir: string, signal?: AbortSignal): ProcessSupervisor {
  return new ProcessSupervisor({
    logDir,
    ...(signal ? { signal } : {}),
    failureCode: 'TESSERA_ERR_BENCH_PROCESS_FAILED',
    abortedCode: 'TESSERA_ERR_BENCH_ABORTED',
    graceMs: 3_000,
    // Straight to the file: copying a proxy's access log through the harness would cost it CPU under load.
    defaults: { output: 'file', ownGroup: true, readyTimeoutMs: 15_000 },
  });
}
