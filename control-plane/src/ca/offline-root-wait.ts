// A control plane whose root is offline (`ca.root: offline`) and that has no authority yet cannot sign, so it
// cannot serve: until an intermediate is installed it serves only the CA's operator routes on admin.sock (status,
// intermediate-csr, install-intermediate; anything else answers TESSERA_ERR_CA_NO_INTERMEDIATE) and waits. The wait
// ends when this process installed one, or another replica did (the shared database is polled); then the socket
// closes and the start goes on. A stop signal (SIGTERM) ends the wait with TESSERA_ERR_CP_STOPPED.
import { TesseraError, describeError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';
import { AdminSocket } from '../admin/admin-socket.js';
import { type CaRouteDeps, caRoutes } from '../admin/ca-routes.js';

export interface OfflineRootWaitOptions extends CaRouteDeps {
  readonly socketPath: string;
  readonly timers: Timers;
  readonly log: { warn(obj: Record<string, unknown>, msg: string): void; error(obj: Record<string, unknown>, msg: string): void };
  /** Resolves when the process is asked to stop. */
  readonly stop?: Promise<unknown> | undefined;
  /** How often the CA is looked at (and the shared database polled). */
  readonly pollMs?: number;
}

export async function awaitFirstIntermediate(o: OfflineRootWaitOptions): Promise<void> {
  const refuse = () => {
    throw new TesseraError('TESSERA_ERR_CA_NO_INTERMEDIATE', 'the control plane waits for its first intermediate (ca.root: offline); only `tessera ca status|intermediate-csr|install-intermediate` are served until then');
  };
  const socket = new AdminSocket(o.socketPath, new Proxy(caRoutes(o), { get: (routes, key) => (typeof key === 'string' && key in routes ? routes[key] : refuse) }));
  await socket.start();
  o.log.warn({ socket: o.socketPath, trustDomain: o.trustDomain.name }, 'ca.root is offline and no intermediate is installed: waiting. Run `tessera ca intermediate-csr --data-dir D --out intermediate.csr`, have the root sign it, then `tessera ca install-intermediate --data-dir D --cert intermediate.pem --root root.pem` (docs/offline-root.md)');
  try {
    await new Promise<void>((resolve, reject) => {
      let handle: unknown;
      let over = false;
      const end = (e?: unknown) => {
        over = true;
        o.timers.clearTimeout(handle);
        if (e) reject(e);
        else resolve();
      };
      const look = () => {
        if (over) return;
        // The answer to the install that made it ready was sent before this turn: the socket may close now.
        if (o.ca.ready) return end();
        o.ca
          .refresh()
          .catch((e: unknown) => o.log.error({ err: describeError(e) }, 'reading the shared CA failed'))
          .finally(() => {
            if (!over) handle = o.timers.setTimeout(look, o.pollMs ?? 500);
          });
      };
      void o.stop?.then(() => end(new TesseraError('TESSERA_ERR_CP_STOPPED', 'stopped while waiting for the first intermediate (ca.root: offline)')));
      look();
    });
  } finally {
    await socket.stop();
  }
}
