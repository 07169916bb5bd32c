// The control plane's `federation` config block: the bundle endpoint it serves (https_spiffe with its own SVID,
// or https_web with a configured certificate) and the trust domains it federates with (endpoint URL, profile,
// the endpoint's SPIFFE ID and bootstrap bundle for https_spiffe). Schema and resolution with cross-key checks.
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { formatDuration } from '../../../common/duration.js';
import type { TesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';

/**
 * A schema check after `format: 'trust-domain'` (the SPIFFE grammar, with its codes), also used by cp-config.ts:
 * the SPIFFE grammar allows any run of its characters; a trust domain a control plane issues in or federates with is
 * a name its owner holds, so DNS-like: no empty label (".." or a leading or trailing dot), which also names no file.
 */
export const checkTrustDomain = (v: string): string | null =>
  TrustDomain.tryParse(v)?.name.split('.').includes('') ? `"${v}" is not a trust domain (an empty label: a leading, trailing or doubled dot)` : null;

export const FEDERATION_SCHEMA: ObjectSchema = {
  type: 'object',
  description: 'SPIFFE federation: serve this trust domain\'s bundle, fetch those of other trust domains',
  properties: {
    bundleEndpoint: {
      type: 'object',
      properties: {
        listen: { type: 'string', format: 'address', required: true },
        certFile: { type: 'string', minLength: 1 },
        keyFile: { type: 'string', minLength: 1 },
      },
    },
    refreshMin: { type: 'duration', default: '30s', min: 1_000 },
    refreshMax: { type: 'duration', default: '1h', min: 1_000 },
    fetchTimeout: { type: 'duration', default: '10s', min: 100 },
    trustDomains: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          trustDomain: { type: 'string', format: 'trust-domain', required: true, check: checkTrustDomain },
          bundleEndpointUrl: { type: 'string', format: 'url', required: true },
          profile: { type: 'string', enum: ['https_spiffe', 'https_web'], required: true },
          endpointSpiffeId: { type: 'string', format: 'spiffe-id' },
          bundleFile: { type: 'string', minLength: 1 },
          caFile: { type: 'string', minLength: 1 },
        },
      },
    },
  },
};

/** The section as the schema gives it (its defaults filled in: the section is only read when written). */
export interface FederationInput {
  bundleEndpoint?: { listen: string; certFile?: string; keyFile?: string };
  refreshMin: number;
  refreshMax: number;
  fetchTimeout: number;
  trustDomains?: { trustDomain: string; bundleEndpointUrl: string; profile: 'https_spiffe' | 'https_web'; endpointSpiffeId?: string; bundleFile?: string; caFile?: string }[];
}

export interface FederatedDomainConfig {
  readonly trustDomain: TrustDomain;
  readonly bundleEndpointUrl: string;
  readonly profile: 'https_spiffe' | 'https_web';
  readonly endpointSpiffeId?: SpiffeId;
  readonly bundleFile?: string;
  readonly caFile?: string;
}

export interface FederationConfig {
  /** Absent: no endpoint served. certFile/keyFile present = https_web, else https_spiffe (own SVID). */
  readonly bundleEndpoint?: { readonly listen: string; readonly certFile?: string; readonly keyFile?: string };
  readonly refreshMinMs: number;
  readonly refreshMaxMs: number;
  readonly fetchTimeoutMs: number;
  readonly trustDomains: readonly FederatedDomainConfig[];
}

/** The error for `path`; `linePath` is where its line is looked up (the parent when the key is missing). */
type Invalid = (path: (string | number)[], message: string, linePath?: (string | number)[]) => TesseraError;

/** `written(path)`: the file sets that key (a value the schema filled in as a default is not written). */
export function resolveFederationConfig(raw: FederationInput, ownTrustDomain: string, base: string, written: (path: string[]) => boolean, invalid: Invalid): FederationConfig {
  const ep = raw.bundleEndpoint;
  if (ep && (ep.certFile === undefined) !== (ep.keyFile === undefined)) throw invalid(['federation', 'bundleEndpoint'], 'certFile and keyFile go together (https_web); leave both out for https_spiffe');
  const refreshMinMs = raw.refreshMin;
  const refreshMaxMs = raw.refreshMax;
  if (refreshMinMs > refreshMaxMs) {
    // The key the file sets is the one named: the other may be a default, which is nowhere in the file.
    const dflt = (k: string) => (written(['federation', k]) ? '' : ', the default');
    throw written(['federation', 'refreshMin'])
      ? invalid(['federation', 'refreshMin'], `longer than federation.refreshMax (${formatDuration(refreshMaxMs)}${dflt('refreshMax')})`)
      : invalid(['federation', 'refreshMax'], `shorter than federation.refreshMin (${formatDuration(refreshMinMs)}${dflt('refreshMin')})`);
  }
  const seen = new Set<string>();
  // Compared as parsed names: "spiffe://example.org" is example.org, our own domain if that is ours.
  const own = TrustDomain.parse(ownTrustDomain).name;
  const trustDomains = (raw.trustDomains ?? []).map((d, i): FederatedDomainConfig => {
    const at = (k: string) => ['federation', 'trustDomains', i, k];
    const trustDomain = TrustDomain.parse(d.trustDomain);
    if (trustDomain.name === own) throw invalid(at('trustDomain'), `"${d.trustDomain}" is this control plane's own trust domain`);
    if (seen.has(trustDomain.name)) throw invalid(at('trustDomain'), `"${d.trustDomain}" is listed twice`);
    seen.add(trustDomain.name);
    if (!d.bundleEndpointUrl.startsWith('https://')) throw invalid(at('bundleEndpointUrl'), 'a bundle endpoint is served over https');
    if (d.profile === 'https_spiffe') {
      if (!d.endpointSpiffeId) throw invalid(at('endpointSpiffeId'), 'required for profile https_spiffe', at('profile'));
      if (!d.bundleFile) throw invalid(at('bundleFile'), 'required for profile https_spiffe (the bundle that authenticates the endpoint before the first fetch)', at('profile'));
    } else if (d.endpointSpiffeId) {
      throw invalid(at('endpointSpiffeId'), 'only for profile https_spiffe');
    }
    return {
      trustDomain,
      bundleEndpointUrl: d.bundleEndpointUrl,
      profile: d.profile,
      ...(d.endpointSpiffeId ? { endpointSpiffeId: SpiffeId.parse(d.endpointSpiffeId) } : {}),
      ...(d.bundleFile ? { bundleFile: resolve(base, d.bundleFile) } : {}),
      ...(d.caFile ? { caFile: resolve(base, d.caFile) } : {}),
    };
  });
  return {
    ...(ep ? { bundleEndpoint: { listen: ep.listen, ...(ep.certFile && ep.keyFile ? { certFile: resolve(base, ep.certFile), keyFile: resolve(base, ep.keyFile) } : {}) } } : {}),
    refreshMinMs,
    refreshMaxMs,
    fetchTimeoutMs: raw.fetchTimeout,
    trustDomains,
  };
}
