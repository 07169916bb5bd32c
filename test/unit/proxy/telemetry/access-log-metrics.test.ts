// The access log's drops on /metrics: the count the access log keeps, handed to prom-client as increases.
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { countAccessLogDrops } from '../../../../proxy/src/telemetry/access-log-metrics.js';

test('tessera_access_log_lines_dropped_total follows the access log own count, scrape after scrape', async () => {
  const registry = new Registry();
  let dropped = 0;
  countAccessLogDrops(registry, { dropped: () => dropped });
  const value = async () => (await registry.getSingleMetric('tessera_access_log_lines_dropped_total')!.get()).values[0]?.value ?? 0;
  expect(await value()).toBe(0);
  dropped = 7;
  expect(await value()).toBe(7);
  expect(await value()).toBe(7); // a scrape without new drops adds nothing
  dropped = 12;
  expect(await value()).toBe(12);
});
