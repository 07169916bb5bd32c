// The IP addresses of a control-plane host name, for the endpoint picker (control-plane-endpoints.ts): the system
// resolver (getaddrinfo, so /etc/hosts and search domains apply, as gRPC's own resolution does), bounded in time.
import { lookup } from 'node:dns/promises';
import { TesseraError } from '../../../common/errors.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';

/** How long one resolution may take before the name is dialled as it is (gRPC resolves it again). */
export const RESOLVE_TIMEOUT_MS = 5_000;

export function resolveHost(host: string, timeoutMs = RESOLVE_TIMEOUT_MS, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'> = realTimers): Promise<string[]> {
  return new Promise((ok, fail) => {
    const timer = timers.setTimeout(() => fail(new TesseraError('TESSERA_ERR_IDENTITY_RESOLVE_FAILED', `resolving ${host} took longer than ${timeoutMs} ms`)), timeoutMs);
    lookup(host, { all: true, verbatim: true }).then(
      (records) => {
        timers.clearTimeout(timer);
        ok(records.map((r) => r.address));
      },
      (e: unknown) => {
        timers.clearTimeout(timer);
        fail(new TesseraError('TESSERA_ERR_IDENTITY_RESOLVE_FAILED', `resolving ${host}: ${(e as { code?: string }).code ?? (e as Error).message}`, {}, { cause: e }));
      },
    );
  });
}
