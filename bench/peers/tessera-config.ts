// Tessera proxy configurations (DESIGN.md section 8, file identity) and the ALLOW policy for the benchmark pair.
import { stringify } from 'yaml';

export interface TesseraIdentityFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly bundleFile: string;
}

/** How the server side authorizes callers: a policies directory (the client's ID allowed), or allow-all. */
export type TesseraAuthz = { readonly policiesDir: string } | { readonly defaultAction: 'allow' };

/** What every bench proxy shares: identity files, admin port, authorization, and where access logs go. */
interface TesseraCommon {
  readonly identity: TesseraIdentityFiles;
  readonly adminPort: number;
  readonly authorization: TesseraAuthz;
  /** `off` (the default here: the headline compares forwarding with forwarding), `stdout`, or a file path. */
  readonly accessLog?: string;
  /** OpenTelemetry tracing to an OTLP/HTTP endpoint (DESIGN.md section 6); off when absent. */
  readonly tracing?: { readonly otlpEndpoint: string; readonly samplerRatio: number };
  /** `transport.multiplex`; absent: the proxy's default. */
  readonly multiplex?: boolean;
  /** `transport.sessionsPerPeer`; absent: the proxy's default (1). */
  readonly sessionsPerPeer?: number;
}

export interface TesseraClientProxy extends TesseraCommon {
  readonly listenPort: number;
  readonly upstreamPort: number;
  readonly upstreamSpiffeId: string;
  readonly protocol?: 'http' | 'http2';
}

function commonKeys(c: TesseraCommon): Record<string, unknown> {
  const transport = { ...(c.multiplex !== undefined ? { multiplex: c.multiplex } : {}), ...(c.sessionsPerPeer !== undefined ? { sessionsPerPeer: c.sessionsPerPeer } : {}) };
  return {
    authorization: { ...c.authorization },
    admin: { listen: `127.0.0.1:${c.adminPort}` },
    telemetry: { accessLog: c.accessLog ?? 'off', ...(c.tracing ? { tracing: { ...c.tracing } } : {}) },
    ...(Object.keys(transport).length > 0 ? { transport } : {}),
  };
}

/** Client side: an outbound listener (plaintext in, mTLS out to the server proxy, server ID checked). */
export function tesseraClientProxyConfig(c: TesseraClientProxy): string {
  return stringify({
    identity: { files: { ...c.identity } },
    outbound: [
      {
        name: 'bench-server',
        listen: `127.0.0.1:${c.listenPort}`,
        upstream: `127.0.0.1:${c.upstreamPort}`,
        spiffeId: c.upstreamSpiffeId,
        protocol: c.protocol ?? 'http',
      },
    ],
    ...commonKeys(c),
  });
}

export interface TesseraServerProxy extends TesseraCommon {
  readonly listenPort: number;
  readonly appPort: number;
  readonly protocol?: 'http' | 'http2';
}

/** Server side: an inbound listener (mTLS in, caller authorized by policy, plaintext to the app). */
export function tesseraServerProxyConfig(c: TesseraServerProxy): string {
  return stringify({
    identity: { files: { ...c.identity } },
    inbound: [
      {
        name: 'app',
        listen: `127.0.0.1:${c.listenPort}`,
        forwardTo: `127.0.0.1:${c.appPort}`,
        protocol: c.protocol ?? 'http',
      },
    ],
    ...commonKeys(c),
  });
}

export interface TesseraEdgeProxy extends TesseraCommon {
  readonly listenPort: number;
  /** The certificate outside clients see (PEM chain and key). */
  readonly certFile: string;
  readonly keyFile: string;
  /** The sidecar's inbound listener (mTLS) and the SPIFFE ID it must present. */
  readonly upstreamPort: number;
  readonly upstreamSpiffeId: string;
}

/** Edge: TLS from outside clients (no client certificates, so no authorization), one route to the sidecar over mTLS. */
export function tesseraEdgeProxyConfig(c: TesseraEdgeProxy): string {
  return stringify({
    identity: { files: { ...c.identity } },
    edge: [
      {
        name: 'bench-edge',
        listen: `127.0.0.1:${c.listenPort}`,
        certFile: c.certFile,
        keyFile: c.keyFile,
        authorize: false,
        routes: [{ host: '*', pathPrefix: '/', upstream: `127.0.0.1:${c.upstreamPort}`, spiffeId: c.upstreamSpiffeId }],
      },
    ],
    ...commonKeys(c),
  });
}

/** DESIGN.md section 5: the server workload allows the client's SPIFFE ID (and nothing else). */
export function allowPolicyYaml(serverId: string, clientId: string, name = 'bench-allow-client'): string {
  return stringify({
    apiVersion: 'tessera.dev/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name },
    spec: {
      selector: serverId,
      action: 'ALLOW',
      mode: 'enforce',
      rules: [{ from: [clientId] }],
    },
  });
}

/** Sums every sample of a metric family in Prometheus text (all label sets), or null when it is absent. */
export function sumMetric(promText: string, name: string, labelFilter?: (labels: string) => boolean): number | null {
  let found = false;
  let total = 0;
  for (const line of promText.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labelFilter && !labelFilter(m[2] ?? '')) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) {
      found = true;
      total += v;
    }
  }
  return found ? total : null;
}

/** Where a control-plane identity comes from: the control plane's gRPC address, its bundle, a join token file. */
export interface TesseraControlPlaneIdentity {
  readonly address: string;
  readonly bundleFile: string;
  readonly joinTokenFile: string;
}

/** What a mesh proxy's one outbound listener routes to (DESIGN.md section 11): a discovered service, or one fixed upstream. */
export type TesseraOutboundRoute = { readonly service: string } | { readonly upstream: string; readonly spiffeId: string };

export interface TesseraMeshProxy {
  readonly controlPlane: TesseraControlPlaneIdentity;
  /** host:port of the admin listener. */
  readonly adminListen: string;
  /** An inbound listener registered as an endpoint of `service`. */
  readonly inbound?: { readonly listen: string; readonly forwardTo: string; readonly service: string };
  readonly outbound?: { readonly listen: string; readonly route: TesseraOutboundRoute };
  /** `off` unless given. */
  readonly accessLog?: string;
  /** The `routing:` block (DESIGN.md section 11) as written in YAML; absent: the defaults. */
  readonly routing?: Readonly<Record<string, unknown>>;
}

/**
 * A sidecar whose identity and policies come from a control plane: a replica (inbound with `service:`) or a caller
 * (outbound by `service:` or to a fixed `upstream:`).
 */
export function tesseraMeshProxyConfig(c: TesseraMeshProxy): string {
  return stringify({
    identity: { controlPlane: { ...c.controlPlane } },
    ...(c.inbound ? { inbound: [{ name: 'app', listen: c.inbound.listen, forwardTo: c.inbound.forwardTo, protocol: 'http', service: c.inbound.service }] } : {}),
    ...(c.outbound ? { outbound: [{ name: 'bench-service', listen: c.outbound.listen, ...c.outbound.route, protocol: 'http' }] } : {}),
    admin: { listen: c.adminListen },
    telemetry: { accessLog: c.accessLog ?? 'off' },
    ...(c.routing ? { routing: c.routing } : {}),
  });
}
