// The tessera.dev/* pod annotations the injector reads, and their exact grammars with errors that name them.
import { addressProblem } from '../../../common/config/address.js';
import { describeError, TesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { escapeControlCharacters, shownText } from '../../../common/text/control-characters.js';
import { httpUrlProblem } from '../../../common/text/http-url.js';

/**
 * Namespace label that opts a namespace in; the webhook's namespaceSelector matches it. The same key as a pod
 * label opts the pod out ("false" | "disabled"), like the annotation of that name (the webhook's objectSelector).
 */
export const NAMESPACE_INJECT_LABEL = 'tessera.dev/inject';
export const NAMESPACE_INJECT_VALUE = 'enabled';

/**
 * Namespaces never injected, whatever their labels: Tessera's own (a webhook that must admit its own replacement
 * deadlocks a cold cluster) and the cluster's (DNS, CNI and add-ons must start whatever Tessera does). The
 * webhook's namespaceSelector (webhook-configuration.ts) and the injector itself both read this list.
 */
export const EXCLUDED_NAMESPACES: readonly string[] = Object.freeze(['tessera-system', 'kube-system', 'kube-public', 'kube-node-lease']);

export const ANNOTATION = {
  /** "false" | "disabled" opts the pod out; "true" | "enabled" or absent injects. */
  inject: 'tessera.dev/inject',
  /** "8080,9090/http2": app ports that get an mTLS inbound listener each. */
  inboundPorts: 'tessera.dev/inbound-ports',
  /** Default protocol of the inbound ports: http | http2 | grpc | tcp (default http). */
  inboundProtocol: 'tessera.dev/inbound-protocol',
  /** "strict" (default) | "permissive": inbound ports also take plaintext callers (inbound[].mtls), for a migration. */
  inboundMtls: 'tessera.dev/inbound-mtls',
  /** "api=spiffe://td/ns/N/sa/S@host:port[;local=P][;protocol=X],…": explicit upstreams. */
  outbound: 'tessera.dev/outbound',
  /** "on" | "off": the sidecar's JSON access log on stdout (telemetry.accessLog); absent: the proxy default (on). */
  accessLog: 'tessera.dev/access-log',
  /** OTLP/HTTP traces URL (http(s)://collector:4318/v1/traces): turns the sidecar's tracing on. */
  tracingEndpoint: 'tessera.dev/tracing-endpoint',
  /** 0..1: share of new traces sampled, parent-based (telemetry.tracing.samplerRatio). Needs tracing-endpoint. */
  tracingSamplerRatio: 'tessera.dev/tracing-sampler-ratio',
  /** "true" | "enabled" | "false" | "disabled": a forward-proxy outbound listener (mode: http-proxy) and HTTP_PROXY in the apps. */
  httpProxy: 'tessera.dev/http-proxy',
  /** Written by the injector: the Tessera version that injected the pod. */
  injected: 'tessera.dev/injected',
  /** Written by the injector: the proxy config YAML, projected into the sidecar by the downward API. */
  proxyConfig: 'tessera.dev/proxy-config',
  /** Written by the injector: the bootstrap trust bundle (PEM), projected the same way. */
  bootstrapBundle: 'tessera.dev/bootstrap-bundle',
} as const;

export const PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Ports the sidecar owns in the pod's network namespace; app ports may not fall in this range. */
export const RESERVED_PORTS = { first: 15000, last: 15199 } as const;
export const ADMIN_PORT = 15000;
/** The i-th inbound port listens on FIRST_INBOUND_PORT + i (one port gives 15006, as in DESIGN section 8). */
export const FIRST_INBOUND_PORT = 15006;
export const MAX_INBOUND_PORTS = 32;
/** Outbound local ports default to FIRST_OUTBOUND_PORT, FIRST_OUTBOUND_PORT + 1, … unless ";local=" says. */
export const FIRST_OUTBOUND_PORT = 15101;
export const MAX_OUTBOUND = 64;
/** The forward-proxy listener tessera.dev/http-proxy adds (DESIGN section 11): its name and loopback port. */
export const HTTP_PROXY_LISTENER = 'mesh';
export const HTTP_PROXY_PORT = 15080;

export interface InboundPort {
  readonly appPort: number;
  readonly protocol: Protocol;
  /** Present only when tessera.dev/inbound-mtls asks for permissive (strict is the proxy's default). */
  readonly mtls?: 'permissive';
}

export interface OutboundUpstream {
  readonly name: string;
  readonly spiffeId: string;
  /** host:port of the upstream's proxy (its inbound listener), IPv6 in brackets. */
  readonly upstream: string;
  readonly localPort: number;
  readonly protocol: Protocol;
}

export type Annotations = Readonly<Record<string, string>>;

/** The address rule's own reason, when it has a more precise one than "not host:port". */
const because = (problem: string | null) => (problem !== null && problem !== 'is not a host:port address' ? `: it ${problem}` : '');

/** A denial's message quotes the value it refuses, and kubectl prints it: bounded, its control characters escaped. */
function bad(annotation: string, message: string, what: 'annotation' | 'label' = 'annotation'): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_BAD_ANNOTATION', `${what} ${annotation}: ${shownText(message)}`, { [what]: annotation });
}

const PORT = /^[1-9][0-9]{0,4}$/;
function parsePort(text: string): number | null {
  if (!PORT.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}
const isReserved = (p: number) => p >= RESERVED_PORTS.first && p <= RESERVED_PORTS.last;

function parseProtocol(annotation: string, text: string, where: string): Protocol {
  if ((PROTOCOLS as readonly string[]).includes(text)) return text as Protocol;
  throw bad(annotation, `${where}protocol "${text}" is not one of ${PROTOCOLS.join(', ')}`);
}

/** "true" | "enabled" → true, "false" | "disabled" → false (case-insensitive), absent → `absent`; else an error. */
function parseSwitch(annotations: Annotations, annotation: string, absent: boolean, what: 'annotation' | 'label' = 'annotation'): boolean {
  const v = annotations[annotation];
  if (v === undefined) return absent;
  const t = v.trim().toLowerCase();
  if (t === 'false' || t === 'disabled') return false;
  if (t === 'true' || t === 'enabled') return true;
  throw bad(annotation, `"${v}" is not one of "true", "enabled", "false", "disabled"`, what);
}

/**
 * Whether the pod asks to be left alone, by its tessera.dev/inject label or annotation: both read alike (the
 * four words, case-insensitive). An opt-out by either wins (the webhook's selectors skip those before they reach
 * the injector); otherwise an unknown value in either is an error rather than a guess.
 */
export function podOptsOut(annotations: Annotations, labels: Annotations = {}): boolean {
  const read = (map: Annotations, what: 'annotation' | 'label'): boolean | TesseraError => {
    try {
      return !parseSwitch(map, ANNOTATION.inject, true, what);
    } catch (e) {
      return e as TesseraError;
    }
  };
  const byLabel = read(labels, 'label');
  const byAnnotation = read(annotations, 'annotation');
  if (byLabel === true || byAnnotation === true) return true;
  if (byLabel instanceof TesseraError) throw byLabel;
  if (byAnnotation instanceof TesseraError) throw byAnnotation;
  return false;
}

export function isExcludedNamespace(namespace: string): boolean {
  return EXCLUDED_NAMESPACES.includes(namespace);
}

/** Whether tessera.dev/http-proxy asks for the forward proxy (its grammar only; see parseHttpProxy). */
export function wantsHttpProxy(annotations: Annotations): boolean {
  return parseSwitch(annotations, ANNOTATION.httpProxy, false);
}

/**
 * Whether the pod asks for the forward-proxy listener (tessera.dev/http-proxy). Its name is taken, so a
 * tessera.dev/outbound entry of that name is refused with it.
 */
export function parseHttpProxy(annotations: Annotations, outbound: readonly OutboundUpstream[]): boolean {
  if (!parseSwitch(annotations, ANNOTATION.httpProxy, false)) return false;
  if (outbound.some((o) => o.name === HTTP_PROXY_LISTENER)) throw bad(ANNOTATION.httpProxy, `the forward-proxy listener is named "${HTTP_PROXY_LISTENER}": rename that ${ANNOTATION.outbound} entry`);
  return true;
}

/**
 * Grammar: `port[/protocol] *("," port[/protocol])`, blanks around items ignored. A port is 1-65535 in
 * decimal, outside the proxy's reserved range, listed once; a missing protocol takes
 * tessera.dev/inbound-protocol (default http). tessera.dev/inbound-mtls: permissive applies to every port, which
 * must then be http or tcp (the proxy does not detect plaintext HTTP/2).
 */
export function parseInboundPorts(annotations: Annotations): InboundPort[] {
  const pa = ANNOTATION.inboundPorts;
  const protoText = annotations[ANNOTATION.inboundProtocol];
  const defaultProtocol = protoText === undefined ? 'http' : parseProtocol(ANNOTATION.inboundProtocol, protoText.trim(), '');
  const text = annotations[pa];
  if (text === undefined) return [];
  if (text.trim() === '') throw bad(pa, 'is empty: list app ports such as "8080,9090", or remove it');
  const out: InboundPort[] = [];
  const items = text.split(',').map((s) => s.trim());
  if (items.length > MAX_INBOUND_PORTS) throw bad(pa, `lists ${items.length} ports; at most ${MAX_INBOUND_PORTS} are allowed`);
  items.forEach((item, i) => {
    const where = `item ${i + 1} ("${item}"): `;
    if (item === '') throw bad(pa, `item ${i + 1} is empty (stray comma?)`);
    const [portText, proto, extra] = item.split('/');
    if (extra !== undefined) throw bad(pa, `${where}expected port[/protocol]`);
    const port = parsePort(portText!);
    if (port === null) throw bad(pa, `${where}"${portText}" is not a port number 1-65535`);
    if (isReserved(port)) throw bad(pa, `${where}port ${port} is in the proxy's reserved range ${RESERVED_PORTS.first}-${RESERVED_PORTS.last}`);
    if (out.some((p) => p.appPort === port)) throw bad(pa, `${where}port ${port} is listed twice`);
    out.push({ appPort: port, protocol: proto === undefined ? defaultProtocol : parseProtocol(pa, proto, where) });
  });
  if (!parseInboundMtls(annotations)) return out;
  const h2 = out.find((p) => p.protocol === 'http2' || p.protocol === 'grpc');
  if (h2) throw bad(ANNOTATION.inboundMtls, `permissive needs http or tcp inbound ports; port ${h2.appPort} is ${h2.protocol} (plaintext HTTP/2 is not detected)`);
  return out.map((p) => ({ ...p, mtls: 'permissive' as const }));
}

/** True for "permissive", false for "strict" or absent; anything else is an error rather than a guess. */
function parseInboundMtls(annotations: Annotations): boolean {
  const v = annotations[ANNOTATION.inboundMtls]?.trim();
  if (v === undefined || v === 'strict') return false;
  if (v === 'permissive') return true;
  throw bad(ANNOTATION.inboundMtls, `"${v}" is not strict or permissive`);
}

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// A fully qualified name may end in a dot ("api.default.svc.cluster.local."), as configs and flags take it.
const DNS_NAME = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/;

function parseHostPort(text: string): { host: string; port: number } | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const host = text.slice(0, colon);
  const port = parsePort(text.slice(colon + 1));
  if (port === null) return null;
  // The proxy's own rule too: an IPv4 address in another form than dotted decimal, or [not IPv6], is refused.
  if ((!DNS_NAME.test(host) && !IPV6.test(host)) || addressProblem(text) !== null) return null;
  return { host, port };
}

/**
 * Grammar (entries separated by ",", blanks around entries ignored):
 *
 *   entry  = name "=" spiffe-id "@" host ":" port *( ";" option )
 *   name   = DNS label: [a-z0-9] ([a-z0-9-]{0,61} [a-z0-9])?, unique in the annotation
 *   host   = lower-case DNS name (e.g. api.default.svc, a trailing dot allowed), IPv4 address, or "[" IPv6 "]"
 *   option = "local=" port       the loopback port the app dials (default 15101, 15102, … in entry order)
 *          | "protocol=" proto   http | http2 | grpc | tcp (default http)
 *
 * A SPIFFE ID can never hold "@", "=", ";" or ",", so the separators are unambiguous. A local port may not be the
 * proxy's own, another entry's, an inbound app port, or a port in `declaredPorts` (a container's TCP containerPort,
 * mapped to that container's name): the sidecar starts first, holds it, and the app's own bind would fail.
 */
export function parseOutbound(annotations: Annotations, inboundAppPorts: readonly number[], declaredPorts: ReadonlyMap<number, string> = new Map()): OutboundUpstream[] {
  const oa = ANNOTATION.outbound;
  const text = annotations[oa];
  if (text === undefined) return [];
  if (text.trim() === '') throw bad(oa, 'is empty: list upstreams as name=spiffe-id@host:port, or remove it');
  const entries = text.split(',').map((s) => s.trim());
  if (entries.length > MAX_OUTBOUND) throw bad(oa, `lists ${entries.length} upstreams; at most ${MAX_OUTBOUND} are allowed`);
  const parsed: { name: string; spiffeId: string; upstream: string; local?: number; protocol: Protocol }[] = [];
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1} ("${entry}"): `;
    if (entry === '') throw bad(oa, `entry ${i + 1} is empty (stray comma?)`);
    const [head, ...options] = entry.split(';');
    const eq = head!.indexOf('=');
    if (eq <= 0) throw bad(oa, `${where}expected name=spiffe-id@host:port`);
    const name = head!.slice(0, eq).trim();
    if (!NAME.test(name)) throw bad(oa, `${where}name "${name}" is not a DNS label (a-z, 0-9, "-", at most 63)`);
    if (parsed.some((p) => p.name === name)) throw bad(oa, `${where}name "${name}" is used twice`);
    const rest = head!.slice(eq + 1).trim();
    const at = rest.lastIndexOf('@');
    if (at <= 0) throw bad(oa, `${where}expected spiffe-id@host:port after "${name}="`);
    const idText = rest.slice(0, at);
    const id = SpiffeId.tryParse(idText);
    if (!id.ok) throw bad(oa, `${where}"${idText}" is not a SPIFFE ID (${describeError(id.error)})`);
    const address = rest.slice(at + 1);
    const hp = parseHostPort(address);
    if (!hp) throw bad(oa, `${where}"${address}" is not host:port (lower-case DNS name, IPv4, or [IPv6])${because(addressProblem(address))}`);
    let local: number | undefined;
    let protocol: Protocol = 'http';
    const seen = new Set<string>();
    for (const opt of options) {
      const [key, value, extra] = opt.trim().split('=');
      if (value === undefined || extra !== undefined) throw bad(oa, `${where}option "${opt}" is not key=value`);
      if (seen.has(key!)) throw bad(oa, `${where}option "${key}" is given twice`);
      seen.add(key!);
      if (key === 'local') {
        const p = parsePort(value);
        if (p === null) throw bad(oa, `${where}local port "${value}" is not a port number 1-65535`);
        local = p;
      } else if (key === 'protocol') protocol = parseProtocol(oa, value, where);
      else throw bad(oa, `${where}unknown option "${key}" (known: local, protocol)`);
    }
    parsed.push({ name, spiffeId: id.id.toString(), upstream: `${hp.host}:${hp.port}`, ...(local === undefined ? {} : { local }), protocol });
  });
  return assignLocalPorts(parsed, inboundAppPorts, declaredPorts);
}

function assignLocalPorts(
  parsed: readonly { name: string; spiffeId: string; upstream: string; local?: number; protocol: Protocol }[],
  inboundAppPorts: readonly number[],
  declaredPorts: ReadonlyMap<number, string>,
): OutboundUpstream[] {
  const oa = ANNOTATION.outbound;
  const taken = new Set<number>(inboundAppPorts);
  const inboundListeners = inboundAppPorts.map((_, i) => FIRST_INBOUND_PORT + i);
  for (const p of parsed) {
    if (p.local === undefined) continue;
    if (p.local === ADMIN_PORT || inboundListeners.includes(p.local) || (p.local >= RESERVED_PORTS.first && p.local < FIRST_OUTBOUND_PORT)) {
      throw bad(oa, `upstream "${p.name}": local port ${p.local} is used by the proxy itself (${RESERVED_PORTS.first}-${FIRST_OUTBOUND_PORT - 1})`);
    }
    if (taken.has(p.local)) throw bad(oa, `upstream "${p.name}": local port ${p.local} is already used by another upstream or an inbound app port`);
    const owner = declaredPorts.get(p.local);
    if (owner !== undefined) throw bad(oa, `upstream "${p.name}": local port ${p.local} is already used by container "${owner}", which declares it (containerPort ${p.local})`);
    taken.add(p.local);
  }
  let next = FIRST_OUTBOUND_PORT;
  return parsed.map((p) => {
    let localPort = p.local;
    if (localPort === undefined) {
      while (taken.has(next)) next++;
      localPort = next;
      taken.add(next);
    }
    return { name: p.name, spiffeId: p.spiffeId, upstream: p.upstream, localPort, protocol: p.protocol };
  });
}

export interface TelemetryAnnotations {
  readonly accessLog?: 'stdout' | 'off';
  readonly tracing?: { readonly otlpEndpoint: string; readonly samplerRatio?: number };
}

/** Access log and tracing of the sidecar, from tessera.dev/access-log and tessera.dev/tracing-*. */
export function parseTelemetry(annotations: Annotations): TelemetryAnnotations {
  const out: { accessLog?: 'stdout' | 'off'; tracing?: { otlpEndpoint: string; samplerRatio?: number } } = {};
  const log = annotations[ANNOTATION.accessLog];
  if (log !== undefined) {
    const t = log.trim().toLowerCase();
    if (t === 'on' || t === 'true' || t === 'enabled') out.accessLog = 'stdout';
    else if (t === 'off' || t === 'false' || t === 'disabled') out.accessLog = 'off';
    else throw bad(ANNOTATION.accessLog, `"${log}" is not one of "on", "off"`);
  }
  const endpoint = annotations[ANNOTATION.tracingEndpoint]?.trim();
  const ratioText = annotations[ANNOTATION.tracingSamplerRatio];
  if (endpoint !== undefined) {
    // The proxy's config parser applies the same rule to telemetry.tracing.otlpEndpoint; credentials are refused
    // here besides, since anyone who can read the pod reads its annotations.
    const url = URL.parse(endpoint);
    const problem = httpUrlProblem(endpoint) ?? (url?.username || url?.password ? 'carries credentials (user:password@), which anyone who can read the pod would see' : null);
    if (problem !== null) {
      throw bad(ANNOTATION.tracingEndpoint, `"${escapeControlCharacters(endpoint)}" ${problem}: give an http(s) URL such as http://otel-collector.observability:4318/v1/traces`);
    }
    out.tracing = { otlpEndpoint: endpoint };
  }
  if (ratioText !== undefined) {
    if (!out.tracing) throw bad(ANNOTATION.tracingSamplerRatio, `needs ${ANNOTATION.tracingEndpoint} (where spans go)`);
    const n = /^\s*(0(\.\d+)?|1(\.0+)?|\.\d+)\s*$/.test(ratioText) ? Number(ratioText) : Number.NaN;
    if (!(n >= 0 && n <= 1)) throw bad(ANNOTATION.tracingSamplerRatio, `"${ratioText}" is not a number from 0 to 1`);
    out.tracing = { ...out.tracing, samplerRatio: n };
  }
  return out;
}
