// The proxy's control-plane metrics (issue 20, DESIGN.md section 12): which control-plane address is in use now,
// how often the proxy moved away from a failing one and back to its preferred one (read from the shared endpoints
// object at scrape time), and how far this host's clock is from the control plane's (the last SignSvid answer).
// Registered only on proxies whose identity comes from a control plane.
import { Gauge, type Registry } from 'prom-client';
import type { EndpointsState } from '../identity/control-plane-endpoints.js';
import { scrapedCounter } from './scraped-counter.js';

export class ControlPlaneMetrics {
  #state: (() => EndpointsState) | undefined;
  readonly #clockOffset: Gauge;

  constructor(registry: Registry) {
    const state = () => this.#state?.();
    this.#clockOffset = new Gauge({
      name: 'tessera_control_plane_clock_offset_seconds',
      help: "This host's wall clock minus the control plane's, estimated from the last SignSvid answer (positive: ahead; 0 when they may agree, or before the first answer).",
      registers: [registry],
    });
    new Gauge({
      name: 'tessera_control_plane_current',
      help: 'Control-plane addresses the proxy knows (configured, or records of a DNS name): 1 for the one in use now, else 0; preferred="true" marks the one it fails back to.',
      labelNames: ['address', 'preferred'],
      registers: [registry],
      collect() {
        this.reset();
        const s = state();
        for (const address of s?.candidates ?? []) this.set({ address, preferred: String(address === s!.preferred) }, address === s!.current ? 1 : 0);
      },
    });
    // Counted by the endpoints object; each scrape adds what happened since the last one.
    const counter = (name: string, help: string, read: (s: EndpointsState) => number) =>
      scrapedCounter(registry, name, help, () => {
        const s = state();
        return s ? read(s) : 0;
      });
    counter('tessera_control_plane_failovers_total', 'Moves from a control-plane address that failed (unreachable, deadline, stream ended by a replica going away) to the next one.', (s) => s.failovers);
    counter('tessera_control_plane_failbacks_total', 'Returns to the preferred control-plane address after a background probe saw it answer again.', (s) => s.failbacks);
  }

  /** The estimated clock offset of the last SignSvid answer (ms, local minus control plane). */
  clockOffset(offsetMs: number): void {
    if (Number.isFinite(offsetMs)) this.#clockOffset.set(offsetMs / 1000);
  }

  /** Reads the endpoints' state at each scrape from now on. */
  observe(state: () => EndpointsState): void {
    this.#state = state;
  }
}
