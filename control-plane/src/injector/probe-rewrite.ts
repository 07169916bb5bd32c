// App containers' kubelet probes, pointed at the sidecar. Apps listen on loopback (the sidecar's mTLS inbound port
// is the way in), and the kubelet probes the pod IP without a client certificate, so an httpGet or tcpSocket probe
// is rewritten to GET /app-health/<container>/<kind> on the sidecar's admin port, which runs it against the app on
// 127.0.0.1 and answers with its outcome (what Istio does). gRPC and exec probes are left as they are.
// Probes are read as pod-shape.ts checked them: handler objects, integer timing fields, sendable headers.
import { ADMIN_PORT, RESERVED_PORTS } from './annotations.js';
import { type Container, type Json, isObject } from './k8s-types.js';

export const PROBE_KINDS = { livenessProbe: 'liveness', readinessProbe: 'readiness', startupProbe: 'startup' } as const;
export type ProbeField = keyof typeof PROBE_KINDS;
/** A probe's integer fields (core/v1 Probe): all a rewritten probe keeps besides its new handler. */
export const PROBE_TIMING_FIELDS = ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds'] as const;

/**
 * The range the proxy's config accepts for `admin.appProbes.*.timeout` (proxy/src/config/proxy-config.ts:
 * 100 ms to 60 s). The kubelet's timeoutSeconds is a positive integer with no maximum; a longer one is run by the
 * sidecar for 60 s (the kubelet still waits its own timeout for the sidecar's answer).
 */
export const APP_PROBE_TIMEOUT_SECONDS = { min: 1, max: 60 } as const;

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

const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536;

/** An IntOrString port: a number, or the name of one of the container's ports; null when it does not resolve. */
function resolvePort(c: Container, port: unknown): number | null {
  if (typeof port === 'number') return isPort(port) ? port : null;
  if (typeof port !== 'string') return null;
  if (/^[0-9]+$/.test(port)) return resolvePort(c, Number(port));
  const named = (c.ports ?? []).find((p) => p.name === port)?.containerPort;
  return isPort(named) ? named : null;
}

/**
 * The request path the kubelet would send: Go's URL formatting adds a leading "/" and percent-encodes what a
 * request line cannot carry (node:http, which the sidecar uses, refuses such a path outright).
 */
function requestPath(path: string): string {
  const rooted = path.startsWith('/') ? path : `/${path}`;
  return rooted.replace(/[^\x21-\x7e]/gu, (ch) => [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

function targetOf(c: Container, probe: Record<string, unknown>): Omit<AppProbeTarget, 'timeout'> | null {
  if (isObject(probe.httpGet)) {
    const h = probe.httpGet;
    // A probe aimed at another host is not the app's: leave it to the kubelet.
    if (typeof h.host === 'string' && h.host !== '') return null;
    const port = resolvePort(c, h.port);
    if (port === null || isSidecarPort(port)) return null;
    const headers = Array.isArray(h.httpHeaders)
      ? Object.fromEntries(h.httpHeaders.filter((x): x is { name: string; value: string } => isObject(x) && typeof x.name === 'string' && typeof x.value === 'string').map((x) => [x.name, x.value]))
      : {};
    return {
      port,
      ...(typeof h.path === 'string' && h.path !== '' ? { path: requestPath(h.path) } : {}),
      ...(h.scheme === 'HTTPS' ? { scheme: 'HTTPS' as const } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
  }
  if (isObject(probe.tcpSocket)) {
    if (typeof probe.tcpSocket.host === 'string' && probe.tcpSocket.host !== '') return null;
    const port = resolvePort(c, probe.tcpSocket.port);
    return port === null || isSidecarPort(port) ? null : { port, tcp: true };
  }
  return null;
}

/**
 * A probe of a port the sidecar owns is not the app's: rewriting it would make the sidecar probe itself (it is
 * also what an already rewritten probe looks like, so a second pass leaves it alone).
 */
function isSidecarPort(port: number): boolean {
  return port >= RESERVED_PORTS.first && port <= RESERVED_PORTS.last;
}

/** The kubelet's timeout (default 1 s) bounds the sidecar's own attempt, within what the proxy accepts. */
function timeoutOf(probe: Record<string, unknown>): string {
  const t = typeof probe.timeoutSeconds === 'number' && Number.isFinite(probe.timeoutSeconds) ? Math.ceil(probe.timeoutSeconds) : APP_PROBE_TIMEOUT_SECONDS.min;
  return `${Math.min(APP_PROBE_TIMEOUT_SECONDS.max, Math.max(APP_PROBE_TIMEOUT_SECONDS.min, t))}s`;
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
    targets[key] = { ...target, timeout: timeoutOf(probe) };
    // Only the integer fields are carried over, so nothing of the request's nesting is copied into the patch.
    const timing: Record<string, Json> = {};
    for (const f of PROBE_TIMING_FIELDS) if (typeof probe[f] === 'number') timing[f] = probe[f];
    probes[field] = { ...timing, httpGet: { path: `${APP_HEALTH_PREFIX}${key}`, port: ADMIN_PORT, scheme: 'HTTP' } };
  }
  return { probes, targets };
}
