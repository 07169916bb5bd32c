// The method notes of the mesh scenarios (`mesh`, keep-alive clients; `mesh-cpr`, a connection per request):
// load, CPU and memory method, topology, and what each row is.
import type { ScenarioOptions } from '../harness/scenario.js';

/** How the load generator reaches the client-side proxy. */
export type MeshMode = 'keep-alive' | 'conn-per-request';

export interface MeshRowNames {
  readonly tessera: string;
  readonly tesseraH1: string;
  readonly tesseraLog: string;
  readonly tesseraTrace: string;
  readonly haproxy: string;
  readonly haproxyH2: string;
  readonly tesseraEdge: string;
  readonly nginxEdge: string;
}

function loadNote(opts: Pick<ScenarioOptions, 'connections' | 'rateRps' | 'warmupMs' | 'primeMs' | 'durationMs' | 'wrk'>, mode: MeshMode, rateIgnored: boolean): string {
  const prime = opts.primeMs
    ? ` Before its first round each variant carried ${opts.primeMs} ms of closed-loop load, not measured: V8 keeps compiling for the first tens of thousands of requests, a cost a long-running proxy pays once (without it, a fixed 1,000 req/s measured mostly the compiler).`
    : '';
  const window = `Warm-up ${opts.warmupMs} ms, measured ${opts.durationMs} ms.${prime}`;
  if (mode === 'conn-per-request' && opts.wrk) {
    return `Load: a NEW plaintext TCP connection per request, from wrk (\`wrk -t1 -c${opts.connections} -H "Connection: close"\`: the server closes after each answer and wrk connects again), ${opts.connections} connections; the same for every row, to the client-side proxy (to the app for the direct row). The proxies keep their upstream (proxy-to-proxy) connections pooled or multiplexed. ${window}`;
  }
  if (mode === 'conn-per-request') {
    return (
      `Load: a NEW plaintext TCP connection per request (\`Connection: close\`), ${opts.connections} concurrent closed loops (connect → one GET → close), the harness's own generator (harness/conn-per-request-load.ts); the same for every row, to the client-side proxy (to the app for the direct row). ` +
      `The proxies keep their upstream (proxy-to-proxy) connections pooled or multiplexed. ${window}${rateIgnored ? ' `--rate` does not apply to this load and was ignored.' : ''}`
    );
  }
  if (opts.rateRps) {
    return `Load: HTTP/1.1 keep-alive, ${opts.connections} connections, a fixed ${opts.rateRps} req/s open loop from the harness's paced generator (harness/paced-load.ts): request n is due at n / rate and goes on connection n mod ${opts.connections}, so arrivals are even in time (autocannon's --rate sends each connection's share in bursts); latency counts from when a request was due; the same for every variant. Priming uses autocannon, closed loop. ${window}`;
  }
  if (opts.wrk) {
    return `Load: wrk (\`wrk -t1 -c${opts.connections}\`, one thread, a C process of its own, as the independent harnesses that check these figures run it), HTTP/1.1 keep-alive, ${opts.connections} connections, closed loop; the same for every variant, priming included. Latency percentiles are wrk's own. ${window}`;
  }
  return `Load: autocannon, HTTP/1.1 keep-alive, ${opts.connections} connections, pipelining 1, closed loop; the same for every variant. ${window}`;
}

export function meshNotes(opts: Pick<ScenarioOptions, 'connections' | 'rateRps' | 'warmupMs' | 'primeMs' | 'durationMs' | 'wrk'>, mode: MeshMode, n: MeshRowNames, rateIgnored = false): string[] {
  const common = [
    loadNote(opts, mode, rateIgnored),
    'CPU = utime+stime of all threads (and child processes) from /proc/<pid>/stat around the measured window, divided by completed requests. Ratios are taken per round against the same round, then the median (min–max) over rounds.',
    'Memory: RSS (VmRSS of /proc/<pid>/status) and PSS (`Pss:` of /proc/<pid>/smaps_rollup; shared pages divided among the processes mapping them) of each proxy and its children, summed: idle = right after the pair said it was ready, before any load; load = at the end of each measured window.',
    'Topology of a pair: load → client-side proxy (plaintext in, mTLS out, pooled) → server-side proxy (client cert required and verified) → app. Every proxy runs one worker/thread on the same 2 cores as the load generator and the app.',
    `"${n.tessera}" carries every request between the two proxies as a stream of one multiplexed mTLS connection (\`transport.multiplex\`, the default, docs/transport.md); "${n.tesseraH1}" is the same pair with \`transport.multiplex: false\`: a pooled keep-alive mTLS connection per request in flight.`,
    `Tessera: both proxies run \`tessera proxy --config F\` on Node ${process.version} with file identities; the server side authorizes by a policies directory (one ALLOW policy for the client's SPIFFE ID, not defaultAction allow), \`telemetry.accessLog: off\`.`,
    `"${n.haproxy}": HTTP/1.1 between the two HAProxies over pooled mTLS (\`http-reuse always\`). "${n.haproxyH2}": HTTP/1.1 in, HTTP/2 over mTLS between them (\`alpn h2\` on the client side's server line, \`alpn h2,http/1.1\` on the server side's mTLS bind: one multiplexed connection), HTTP/1.1 to the app.`,
    'Authorization: Tessera and HAProxy check the client SPIFFE ID (policy / DER URI SAN match); nginx cannot (no URI SAN variable) and accepts any SVID of the trust domain.',
  ];
  if (mode === 'conn-per-request') return common;
  return [
    ...common,
    `"${n.tesseraLog}" writes JSON access lines to a file on both sides; the headline gives what that adds per side.`,
    '"node floor pair": a measuring stick, not a proxy (harness/children/node-floor.ts): two Node processes with the Tessera pair\'s Node flags and one mTLS connection (client certificate required) carrying every read of a caller as a frame [stream id, length, bytes], one TLS write per event-loop turn, answers routed back by id, the server side giving each stream its own keep-alive app connection. No HTTP parsing at all (bytes are moved, never read), no authorization, XFCC, metrics, access log, flow control, limits or reconnect: what Node itself costs for this shape. Keep-alive rows only: it parses nothing, so with a connection per request it would pass the caller\'s `Connection: close` on to the app. Its ratio to nginx bounds what a Node sidecar of this design can reach; Tessera\'s ratio to it is what Tessera\'s work adds.',
    `"${n.tesseraTrace}": the same pair with \`telemetry.tracing\` (samplerRatio 1) on both proxies, exporting OTLP/HTTP JSON to a sink the harness runs as its own process on loopback (POST /v1/traces → 200); its CPU is reported apart, not in the proxies'.`,
    `Edge rows: the load generator speaks HTTPS (TLS 1.3, keep-alive, no client certificate; the same connections and pipelining as every other row) to an edge that terminates it with one ECDSA P-256 certificate (DNS SAN edge.bench.local, same CA) and forwards over mTLS to a sidecar in front of the app. "${n.tesseraEdge}": a Tessera \`edge\` listener (route \`*\` / to the sidecar, \`authorize: false\`) → the Tessera server side (policy as above). "${n.nginxEdge}": nginx \`listen ssl\` with the client-side pool settings above → the nginx server side. In their rows, "client" is the edge and "server" the sidecar, and the "÷ nginx" columns are against the nginx edge of the same round (HAProxy has no edge row). The load generator's own TLS work lowers the closed-loop rate of both edge rows alike; compare them with each other.`,
  ];
}
