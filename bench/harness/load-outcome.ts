// What every load generator reports for one window (autocannon's LoadResult adds status and error breakdowns).
import type { LatencySummary } from './latency-histogram.js';

export interface LoadOutcome {
  readonly elapsedMs: number;
  /** Completed responses of any status. */
  readonly responses: number;
  readonly ok2xx: number;
  readonly non2xx: number;
  /** Transport failures: refused, reset or dropped connections, timeouts. */
  readonly errors: number;
  readonly reqPerSec: number;
  readonly latency: LatencySummary;
  /** The first few distinct failure messages. */
  readonly errorSamples: readonly string[];
}
