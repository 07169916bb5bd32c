// A counter kept elsewhere as a running total (by the object that knows the events, for its own reasons), handed
// to prom-client at each scrape as the increase since the last one: nothing is counted twice on a hot path.
import { Counter, type Registry } from 'prom-client';

export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  let reported = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const n = read();
      if (n > reported) this.inc(n - reported);
      reported = n;
    },
  });
}
