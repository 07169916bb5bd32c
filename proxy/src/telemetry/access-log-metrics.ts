// The access log's losses on /metrics: lines dropped because its destination could not keep up (past its buffer),
// failed, or had not taken them when the proxy stopped. Counted by the access log; read at each scrape.
import type { Registry } from 'prom-client';
import type { AccessLog } from './access-log.js';
import { scrapedCounter } from './scraped-counter.js';

export function countAccessLogDrops(registry: Registry, log: Pick<AccessLog, 'dropped'>): void {
  scrapedCounter(
    registry,
    'tessera_access_log_lines_dropped_total',
    'Access-log lines not written: the destination fell more than its buffer behind, failed or had no reader (until it took lines again), or had not taken them when the proxy stopped.',
    () => log.dropped(),
  );
}
