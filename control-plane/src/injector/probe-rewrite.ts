// App containers' kubelet probes, pointed at the sidecar. Apps listen on loopback (the sidecar's mTLS inbound port
// is the way in), and the kubelet probes the pod IP without a client certificate, so an httpGet or tcpSocket probe
// is rewritten to GET /app-health/<container>/<kind> on the sidecar's admin port, which runs it against the app on
// 127.0.0.1 and answers with its outcome (what Istio does). gRPC and exec probes are left as they are.
import { ADMIN_PORT } from './annotations.js';
import { type Container, type Json, cloneJson, isObject } from './k8s-types.js';

export const PROBE_KINDS = { livenessProbe: 'liveness', readinessProbe: 'readiness', startupProbe: 'startup' } as const;
export type ProbeField = keyof typeof PROBE_KINDS;

/** One entry of the proxy config's `admin.appProbes` (proxy/src/admin/app-probe.ts runs it). */
export interface AppProbeTarget {
  readonly port: number;
  readonly tcp?: true;
  readonly path?: string;
  readonly scheme?: 'HTTPS';
  readonly timeout: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RewrittenProbes {
  /** Replacement probes, by container field. */
  readonly probes: Partial<Record<ProbeField, Json>>;
  /** `admin.appProbes` entries, keyed `<container>/<kind>` (the path after /app-health/). */
  readonly targets: Readonly<Record<string, AppProbeTarget>>;
}

export const APP_HEALTH_PREFIX = '/app-health/';

/** An IntOrString port: a number, or the name of one of the container's ports; null when it does not resolve. */
function resolvePort(c: Container, port: unknown): number | null {
  if (typeof port === 'number') return Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
  if (typeof port !== 'string') return null;
  if (/^[0-9]+$/.test(port)) return resolvePort(c, Number(port));
  return (c.ports ?? []).find((p) => p.name === port)?.containerPort ?? null;
}

function targetOf(c: Container, probe: Record<string, unknown>): Omit<AppProbeTarget, 'timeout'> | null {
  if (isObject(probe.httpGet)) {
    const h = probe.httpGet;
    // A probe aimed at another host is not the app's: leave it to the kubelet.
    if (typeof h.host === 'string' && h.host !== '') return null;
    const port = resolvePort(c, h.port);
    if (port === null) return null;
    const headers = Array.isArray(h.httpHeaders)
      ? Object.fromEntries(h.httpHeaders.filter((x): x is { name: string; value: string } => isObject(x) && typeof x.name === 'string' && typeof x.value === 'string').map((x) => [x.name, x.value]))
      : {};
    return {
      port,
      ...(typeof h.path === 'string' && h.path !== '' ? { path: h.path } : {}),
      ...(h.scheme === 'HTTPS' ? { scheme: 'HTTPS' as const } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
  }
  if (isObject(probe.tcpSocket)) {
    if (typeof probe.tcpSocket.host === 'string' && probe.tcpSocket.host !== '') return null;
    const port = resolvePort(c, probe.tcpSocket.port);
    return port === null ? null : { port, tcp: true };
  }
  return null;
}

/** Pure: the container's httpGet/tcpSocket probes as sidecar probes, and what the sidecar must run for each. */
export function rewriteProbes(c: Container): RewrittenProbes {
  const probes: Partial<Record<ProbeField, Json>> = {};
  const targets: Record<string, AppProbeTarget> = {};
  for (const [field, kind] of Object.entries(PROBE_KINDS) as [ProbeField, string][]) {
    const probe = c[field];
    if (!isObject(probe)) continue;
    const target = targetOf(c, probe);
    if (!target) continue;
    const key = `${c.name}/${kind}`;
    // The kubelet's timeout (default 1 s) bounds the sidecar's own attempt, so a slow app fails the probe alike.
    const timeoutSeconds = typeof probe.timeoutSeconds === 'number' && probe.timeoutSeconds > 0 ? probe.timeoutSeconds : 1;
    targets[key] = { ...target, timeout: `${timeoutSeconds}s` };
    const { httpGet: _h, tcpSocket: _t, ...timing } = cloneJson(probe);
    probes[field] = { ...(timing as Record<string, Json>), httpGet: { path: `${APP_HEALTH_PREFIX}${key}`, port: ADMIN_PORT, scheme: 'HTTP' } };
  }
  return { probes, targets };
}
