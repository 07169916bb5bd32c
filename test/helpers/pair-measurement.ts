// One measured round of a pair scenario's variant, as the bench harness records it: fixed throughput and latency,
// the given CPU per request per side, no errors; `extra` adds or overrides fields (RSS, idle CPU, skipped, ...).
import type { Measurement } from '../../bench/harness/scenario.js';

export function pairMeasurement(variant: string, round: number, client: number, server: number, extra: Record<string, number | string> = {}): Measurement {
  return {
    variant,
    round,
    reqPerSec: 10_000,
    p50Ms: 1,
    p99Ms: 4,
    p999Ms: 8,
    cpuUsPerReqClient: client,
    cpuUsPerReqServer: server,
    cpuUsPerReqProxies: client + server,
    errors: 0,
    non2xx: 0,
    ...extra,
  };
}
