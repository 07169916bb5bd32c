// Turns the `federation` config into running parts: the Federation (bootstrap bundles read from their files,
// CA files for https_web endpoints) and the bundle endpoint (https_web with its configured certificate, else
// https_spiffe with the control plane's own SVID). Files are read here, once, with coded errors naming them; the
// last good document of each domain is kept in <dataDir>/federation/<trust domain>.json (public, like the bundle).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { readNamedFileSync } from '../../../shared-io/read-named-file.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ServerIdentity } from '../api/grpc-server.js';
import { writeFileAtomicSync } from '../ca/atomic-file.js';
import { SPIFFE_BUNDLE_FILE } from '../ca/spiffe-bundle-file.js';
import type { FederationConfig } from '../config/federation-config.js';
import type { ControlPlaneLogger } from '../logger.js';
import { BundleEndpoint, type BundleEndpointOptions } from './bundle-endpoint.js';
import { Federation, type FederationOptions, type LastGoodStore } from './federation.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';

/** <dir>/<td>.json; a trust domain name is [a-z0-9._-], so it is a safe file name ("." and ".." aside, refused). */
/** The most a bundle document file may hold (read on every request to the bundle endpoint). */
const MAX_BUNDLE_DOCUMENT_BYTES = 1 << 20;

function lastGoodFiles(dir: string): LastGoodStore {
  const path = (td: string) => {
    if (td === '.' || td === '..') throw new Error(`"${td}" cannot name a file`);
    return join(dir, `${td}.json`);
  };
  return {
    load: (td) => {
      try {
        return readSmallFile(path(td), MAX_BUNDLE_DOCUMENT_BYTES);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    save: (td, text) => {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      writeFileAtomicSync(path(td), text, 0o644);
    },
  };
}

const readText = (path: string, what: string) => readNamedFileSync({ path, what, code: 'TESSERA_ERR_CONFIG_UNREADABLE' }).toString('utf8');

/** The Federation with each domain's kept or bootstrap bundle taken up (a refused bootstrap bundle stops the start). */
export async function openFederation(
  cfg: FederationConfig,
  deps: { dataDir: string; ownBundle: () => TrustBundle; clock: Clock; timers: Timers; log: ControlPlaneLogger } & Pick<FederationOptions, 'onChange' | 'onRefused' | 'onAccepted' | 'keyWeakness'>,
): Promise<Federation> {
  const domains = cfg.trustDomains.map((d) => ({
    trustDomain: d.trustDomain,
    bundleEndpointUrl: d.bundleEndpointUrl,
    profile: d.profile,
    ...(d.endpointSpiffeId ? { endpointSpiffeId: d.endpointSpiffeId } : {}),
    ...(d.bundleFile ? { bootstrap: readText(d.bundleFile, `bootstrap bundle of ${d.trustDomain.name}`) } : {}),
    ...(d.caFile ? { caPem: readText(d.caFile, `bundle endpoint CA of ${d.trustDomain.name}`) } : {}),
  }));
  const { dataDir, ...rest } = deps;
  const federation = new Federation({ ...rest, store: lastGoodFiles(join(dataDir, 'federation')), domains, refreshMinMs: cfg.refreshMinMs, refreshMaxMs: cfg.refreshMaxMs, fetchTimeoutMs: cfg.fetchTimeoutMs });
  await federation.load();
  return federation;
}

/** The served endpoint and whether it follows the control plane's own SVID (https_spiffe). */
export async function startBundleEndpoint(
  ep: NonNullable<FederationConfig['bundleEndpoint']>,
  deps: { dataDir: string; ownIdentity: () => ServerIdentity; log: ControlPlaneLogger; clock: Clock; limits: { readonly handshakeTimeoutMs: number; readonly maxConnections: number }; onRefused: BundleEndpointOptions['onRefused'] },
): Promise<{ endpoint: BundleEndpoint; followsOwnSvid: boolean }> {
  const path = join(deps.dataDir, SPIFFE_BUNDLE_FILE);
  const web = ep.certFile && ep.keyFile ? { certChainPem: readText(ep.certFile, 'bundle endpoint certificate'), keyPem: readText(ep.keyFile, 'bundle endpoint key') } : undefined;
  const { handshakeTimeoutMs, maxConnections } = deps.limits;
  const endpoint = await BundleEndpoint.start({ listen: ep.listen, document: () => readSmallFile(path, MAX_BUNDLE_DOCUMENT_BYTES), identity: web ?? deps.ownIdentity(), log: deps.log, clock: deps.clock, handshakeTimeoutMs, maxConnections, ...(deps.onRefused ? { onRefused: deps.onRefused } : {}) });
  return { endpoint, followsOwnSvid: web === undefined };
}
