// The metrics every Tessera process exposes on /metrics, proxy and control plane alike: prom-client's default
// process_* and nodejs_* series under their standard names, and tessera_build_info{version,node,openssl} 1.
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import type { BuildInfo } from '../common/build-info.js';

/** The event-loop-lag sampler's period (prom-client's eventLoopMonitoringPrecision). */
export const EVENT_LOOP_SAMPLE_MS = 1_000;

export function registerProcessMetrics(registry: Registry, build: BuildInfo, opts: { readonly defaultMetrics?: boolean } = {}): void {
  // No prefix: dashboards and alerts written for any Node service (process_resident_memory_bytes, ...) apply.
  // The event-loop-lag sampler wakes the loop at its precision: prom-client's 10 ms default was ~200 wake-ups a
  // second on an idle sidecar (~7 ms of CPU per second), 100 ms still ~4 ms a second, 1 s ~0.5 ms. Each sample is
  // how late its timer fired, so a loop kept busy shows in the percentiles; a stall shorter than the period is
  // caught only if a sample falls due during it.
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const info = new Gauge({
    name: 'tessera_build_info',
    help: 'Always 1; the labels say which Tessera version runs on which Node.js and OpenSSL.',
    labelNames: ['version', 'node', 'openssl'],
    registers: [registry],
  });
  info.set({ version: build.version, node: build.node, openssl: build.openssl }, 1);
}
