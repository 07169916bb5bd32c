// A listening server whose accept fails (EMFILE, ENFILE: the process is out of file descriptors) emits 'error', and
// with no listener that exits the whole process, though it costs only the connection being accepted. Every
// listener the proxy binds takes this one: the failure is reported, rate-limited, and accepting goes on.
import type { Server } from 'node:net';

/** Accept failures reported at most once per this long, with how many there were since the last report. */
const ACCEPT_REPORT_MS = 10_000;

/**
 * A failed accept (EMFILE, ENFILE: out of file descriptors) is the listening server's 'error', fatal with no
 * listener, though it costs only the connection being accepted. Reported through `report`, rate-limited; a bind
 * failure (before the server listens) is left to listenOn.
 */
export function keepAccepting(server: Server, nowMs: () => number, report: (err: Error, failures: number) => void): void {
  let lastMs = Number.NEGATIVE_INFINITY;
  let failures = 0;
  server.on('error', (err: Error) => {
    if (!server.listening) return;
    failures++;
    const now = nowMs();
    if (now - lastMs < ACCEPT_REPORT_MS) return;
    lastMs = now;
    report(err, failures);
    failures = 0;
  });
}
