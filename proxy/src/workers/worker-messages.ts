// The IPC protocol between the primary and its listener workers (docs/workers.md), and the whole-snapshot
// encodings it carries: identity (chain, key and bundles as PEM), policies, deny-list, ticket keys and the
// discovery directory; and the edge certificate sets the workers loaded, kept by the primary for a restarted worker.
// Only structured-clone-safe values travel; private keys travel here and nowhere else.
import { X509Certificate } from 'node:crypto';
import type { EndpointMsg } from '../../../common/contract/discovery-v1.js';
import { TesseraError } from '../../../common/errors.js';
import { keyPairFromPem } from '../../../common/pki/keys.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { endpointToWire } from '../../../common/routing/service-endpoint.js';
import { TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { PolicyHolder } from '../authz/policy-holder.js';
import type { EdgeCertTexts } from '../edge/edge-certificates.js';
import type { DenialRow } from '../authz/denial-tally.js';
import type { IdentityInput, IdentitySnapshot } from '../identity/identity-snapshot.js';
import type { ServiceDirectory } from '../routing/service-directory.js';
import type { EndpointView } from '../routing/lease.js';
import { createDenyList, type DenyList } from '../tls/deny-list.js';

export interface IdentityWire {
  /** The primary's generation: a worker acknowledges it once the snapshot is installed. */
  readonly generation: number;
  readonly chainPem: string;
  readonly keyPem: string;
  readonly bundles: readonly { readonly trustDomain: string; readonly pem: string }[];
  readonly source: string;
}

export interface PoliciesWire {
  readonly policies: readonly AuthorizationPolicy[];
  readonly grants: readonly BreakGlassGrant[];
  readonly version: string;
}

export interface DenyListWire {
  readonly spiffeIds: readonly string[];
  readonly serials: readonly string[];
}

/** The directory's whole state: a worker installs it as a full update of exactly these services. */
export interface DirectoryWire {
  readonly version: string;
  readonly services: readonly { readonly service: string; readonly endpoints: readonly EndpointMsg[] }[];
}

/** Everything a worker installs; each part is replaced whole, parts absent are left as they are. */
export interface SnapshotParts {
  readonly identity?: IdentityWire;
  readonly policies?: PoliciesWire;
  readonly denyList?: DenyListWire;
  readonly directory?: DirectoryWire;
}

/** A snapshot part by name: what a worker names when it refuses one, and the `part` label of the refusal counter. */
export type SnapshotPart = keyof SnapshotParts;
export const SNAPSHOT_PARTS: readonly SnapshotPart[] = ['identity', 'policies', 'denyList', 'directory'];

/** Bound ports by `kind/name` (port 0 in the config: the first worker's pick, which the others then share). */
export type PortMap = Readonly<Record<string, number>>;

export type ToWorker =
  | {
      readonly type: 'init';
      readonly configFile: string;
      readonly configText: string;
      readonly ports: PortMap;
      readonly parts: SnapshotParts;
      /** By edge listener name: the last set a worker loaded, served when the files on disk are refused at start. */
      readonly edgeCertificates: Readonly<Record<string, EdgeCertTexts>>;
    }
  | { readonly type: 'update'; readonly parts: SnapshotParts }
  | { readonly type: 'stats'; readonly id: number }
  /** The liveness check (worker-heartbeat.ts): answered with a pong from the worker's event loop. */
  | { readonly type: 'ping' };

export interface WorkerStats {
  readonly pid: number;
  /** prom-client `getMetricsAsJSON()` of the worker's registry. */
  readonly metrics: readonly unknown[];
  readonly listeners: readonly { readonly name: string; readonly port: number; readonly open: number }[];
  readonly endpoints: Readonly<Record<string, readonly (EndpointView & { readonly listener: string })[]>>;
  readonly denials: readonly DenialRow[];
}

export type FromWorker =
  | { readonly type: 'listening'; readonly ports: PortMap }
  | { readonly type: 'installed'; readonly identityGeneration: number }
  /** The worker kept its previous `part` (the new one did not validate there): counted, and /ready says so. */
  | { readonly type: 'refused'; readonly part: SnapshotPart; readonly code: string }
  /** A later snapshot of a part it had refused is in force: the worker is no longer behind on it. */
  | { readonly type: 'recovered'; readonly part: SnapshotPart }
  | { readonly type: 'failed'; readonly code: string; readonly message: string }
  | { readonly type: 'edge-certificates'; readonly listener: string; readonly texts: EdgeCertTexts }
  | { readonly type: 'stats'; readonly id: number; readonly stats: WorkerStats }
  | { readonly type: 'pong' };

export function encodeIdentity(s: IdentitySnapshot): IdentityWire {
  return { generation: s.generation, chainPem: s.chainPem, keyPem: s.keyPem, bundles: s.bundles.bundles().map((b) => ({ trustDomain: b.trustDomain.name, pem: b.toPem() })), source: s.source };
}

/** The input an IdentityStore validates again whole (a worker never installs what it has not checked itself). */
export function decodeIdentity(w: IdentityWire): IdentityInput {
  try {
    return {
      chain: decodeCertificates(w.chainPem).map((der) => new X509Certificate(der)),
      key: keyPairFromPem(w.keyPem),
      bundles: new TrustBundleSet(w.bundles.map((b) => TrustBundle.parse(b.trustDomain, b.pem))),
      source: w.source,
    };
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    throw new TesseraError('TESSERA_ERR_IDENTITY_INVALID', `identity snapshot from the primary does not parse: ${(e as Error).message}`);
  }
}

export function encodePolicies(holder: PolicyHolder): PoliciesWire | undefined {
  if (!holder.loaded) return undefined;
  const s = holder.current;
  return { policies: s.policies, grants: s.breakGlass, version: s.version };
}

/** Installs the primary's policies exactly as they are there (same version, same grants). */
export function applyPolicies(holder: PolicyHolder, w: PoliciesWire): void {
  holder.setPolicies(w.policies, w.grants, w.version);
}

export function encodeDenyList(list: DenyList): DenyListWire {
  return { spiffeIds: [...list.spiffeIds], serials: [...list.serials] };
}

export function decodeDenyList(w: DenyListWire): DenyList {
  return createDenyList(w.spiffeIds, w.serials);
}

export function encodeDirectory(d: ServiceDirectory): DirectoryWire | undefined {
  const version = d.version;
  if (version === undefined) return undefined;
  return { version, services: d.names().map((service) => ({ service, endpoints: (d.get(service) ?? []).map(endpointToWire) })) };
}

/** Makes `d` hold exactly the services of `w` (a full update; `rebase`: the primary's version may restart). */
export function applyDirectory(d: ServiceDirectory, w: DirectoryWire): void {
  // Watching exactly the primary's names: a full update then keeps those (empty ones too) and drops any other.
  const services = new Set(w.services.map((s) => s.service));
  d.apply({ version: w.version, full: true, generated_at_unix_ms: '0', services: w.services.map((s) => ({ service: s.service, endpoints: [...s.endpoints] })) }, { all: false, services }, { rebase: true });
}
