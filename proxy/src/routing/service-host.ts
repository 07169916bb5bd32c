// Which service a forward-proxy request names: the host of its absolute-form target, CONNECT authority or Host
// header, without port, lower-cased, looked up as written (a final dot ignored); else as kube-dns reads it
// (common/routing/kubernetes-service-name.ts, the control plane's reading too): `api.ns.svc`,
// `api.ns.svc.cluster.local` name `api.ns`, while `api.svc` is `api` in namespace `svc` (`api.svc`), never `api`.
// Pure: the caller says which names are known.
import { canonicalServiceName, parseKubernetesServiceName } from '../../../common/routing/kubernetes-service-name.js';

/**
 * The host part of "host", "host:port" or "[v6]:port", lower-cased and without a final dot; null when malformed
 * (a port outside 1..65535 included, as splitAddress refuses it).
 */
export function hostOf(authority: string): string | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(authority);
  if (!m || (m[3] !== undefined && !validPort(Number(m[3])))) return null;
  const host = (m[1] ?? m[2]!).toLowerCase();
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function validPort(port: number): boolean {
  return port >= 1 && port <= 65_535;
}

/** The service `authority` names among `known` ones, or null. */
export function serviceOfHost(authority: string, known: (name: string) => boolean): string | null {
  const host = hostOf(authority);
  if (!host) return null;
  if (known(host)) return host;
  // kube-dns reads a final dot as an absolute name (only the full `…svc.cluster.local.` then resolves): keep it.
  const k = parseKubernetesServiceName(/\.(?::\d+)?$/.test(authority) ? `${host}.` : host);
  const name = k === null ? null : canonicalServiceName(k);
  return name !== null && name !== host && known(name) ? name : null;
}

/** Splits an absolute-form target ("http://host:port/path?q") into its authority and origin-form rest; null when not one. */
export function splitAbsoluteTarget(target: string): { authority: string; path: string } | null {
  const m = /^http:\/\/([^/?#@]+)([/?].*)?$/i.exec(target);
  if (!m) return null;
  const rest = m[2] ?? '/';
  return { authority: m[1]!, path: rest.startsWith('?') ? `/${rest}` : rest };
}
