// The proxy config's `identity:` key (DESIGN.md section 8): where the proxy's SVID comes from, SVID files on disk
// or a control plane (its replicas, bootstrap bundle and attestation). Schema, raw shape and resolution, paths
// resolved against the config file's directory; the checks that need other keys stay in proxy-config.ts.
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { resolveTpmEvidenceConfig, TPM_EVIDENCE_SCHEMA, type TpmEvidenceConfig, type TpmEvidenceInput } from '../identity/tpm/tpm-evidence-config.js';

export type IdentityConfig =
  | { readonly kind: 'files'; readonly certFile: string; readonly keyFile: string; readonly bundleFile: string }
  | {
      readonly kind: 'controlPlane';
      /** host:port of each replica, in preference order (`address` gives one; a DNS name may stand for several). */
      readonly addresses: readonly string[];
      /** How often the preferred address is probed while another one serves. */
      readonly failbackIntervalMs: number;
      readonly bundleFile: string;
      readonly trustDomain?: string;
      /** Where `trustDomain` is written (file and line): checked against the bundle's certificates once it is read. */
      readonly trustDomainAt?: ConfigPlace;
      readonly joinToken?: string;
      readonly joinTokenFile?: string;
      readonly kubernetesTokenFile?: string;
      /** TPM attestation: a quote by the local TPM's attestation key (docs/tpm-attestation.md). */
      readonly tpm?: TpmEvidenceConfig;
      /** Where the SVID and its key are kept across restarts (proxy/src/identity/svid-state-dir.ts); absent: nowhere. */
      readonly stateDir?: string;
    };

/** A key's place in the config file, for a fault found after parsing. */
export interface ConfigPlace {
  readonly file: string;
  readonly line: number;
}

export const identitySchema: ObjectSchema = {
  type: 'object',
  required: true,
  exactlyOneOf: [['controlPlane', 'files']],
  properties: {
    controlPlane: {
      type: 'object',
      exactlyOneOf: [
        ['address', 'addresses'],
        ['joinToken', 'joinTokenFile', 'kubernetesTokenFile', 'tpm'],
      ],
      properties: {
        address: { type: 'string', format: 'address', description: 'One control plane; a DNS name with several records counts each record as a replica' },
        addresses: {
          type: 'array',
          items: { type: 'string', format: 'address' },
          minItems: 1,
          maxItems: 16,
          description: 'Control-plane replicas in preference order; the proxy fails over and back among them',
        },
        failbackInterval: {
          type: 'duration',
          min: 1_000,
          max: 3_600_000,
          default: '30s',
          description: 'How often the preferred control-plane address is probed while another one serves',
        },
        bundleFile: { type: 'string', required: true, minLength: 1 },
        trustDomain: { type: 'string', format: 'trust-domain', description: 'Refuse SVIDs of any other trust domain; default: the one the bootstrap bundle names' },
        joinToken: { type: 'string', minLength: 1 },
        joinTokenFile: { type: 'string', minLength: 1 },
        kubernetesTokenFile: { type: 'string', minLength: 1 },
        tpm: TPM_EVIDENCE_SCHEMA,
        stateDir: { type: 'string', minLength: 1, description: 'Directory (0700) where the proxy keeps its SVID and key (0600) across restarts; a restart starts from them instead of attesting' },
      },
    },
    files: {
      type: 'object',
      properties: {
        certFile: { type: 'string', required: true, minLength: 1 },
        keyFile: { type: 'string', required: true, minLength: 1 },
        bundleFile: { type: 'string', required: true, minLength: 1 },
      },
    },
  },
};

export interface RawIdentity {
  controlPlane?: {
    address?: string;
    addresses?: string[];
    failbackInterval: number;
    bundleFile: string;
    trustDomain?: string;
    joinToken?: string;
    joinTokenFile?: string;
    kubernetesTokenFile?: string;
    tpm?: TpmEvidenceInput;
    stateDir?: string;
  };
  files?: { certFile: string; keyFile: string; bundleFile: string };
}

/** `id` resolved, its paths against `base`; a replica listed twice is a `problem`; `placeOf` where a key is written. */
export function resolveIdentity(id: RawIdentity, base: string, problem: (keyPath: (string | number)[], message: string) => never, placeOf: (keyPath: (string | number)[]) => ConfigPlace): IdentityConfig {
  const path = (p: string) => resolve(base, p);
  const replicas = id.controlPlane?.addresses ?? [];
  const twice = replicas.findIndex((a, i) => replicas.indexOf(a) !== i);
  if (twice >= 0) problem(['identity', 'controlPlane', 'addresses', twice], `"${replicas[twice]}" is listed twice`);
  if (id.files) return { kind: 'files', certFile: path(id.files.certFile), keyFile: path(id.files.keyFile), bundleFile: path(id.files.bundleFile) };
  const cp = id.controlPlane!;
  return {
    kind: 'controlPlane',
    addresses: cp.addresses ?? [cp.address!],
    failbackIntervalMs: cp.failbackInterval,
    bundleFile: path(cp.bundleFile),
    ...(cp.trustDomain ? { trustDomain: cp.trustDomain, trustDomainAt: placeOf(['identity', 'controlPlane', 'trustDomain']) } : {}),
    ...(cp.joinToken ? { joinToken: cp.joinToken } : {}),
    ...(cp.joinTokenFile ? { joinTokenFile: path(cp.joinTokenFile) } : {}),
    ...(cp.kubernetesTokenFile ? { kubernetesTokenFile: path(cp.kubernetesTokenFile) } : {}),
    ...(cp.tpm ? { tpm: resolveTpmEvidenceConfig(cp.tpm, base) } : {}),
    ...(cp.stateDir ? { stateDir: path(cp.stateDir) } : {}),
  };
}
