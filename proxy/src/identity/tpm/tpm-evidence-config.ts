// The proxy's `identity.controlPlane.tpm` config block (one of joinToken / joinTokenFile / kubernetesTokenFile /
// tpm): which attestation key quotes, through which TCTI, and the file of its certificate chain. Schema (hooked
// into proxy-config.ts) and resolution with relative paths against the config file's directory.
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../../common/config/schema.js';
import type { TpmQuoterOptions } from './tpm-quoter.js';

/** Where `tpm2_createak` + `tpm2_evictcontrol` in docs/tpm-attestation.md put the AK. */
export const DEFAULT_AK_HANDLE = '0x81010002';

export const TPM_EVIDENCE_SCHEMA: ObjectSchema = {
  type: 'object',
  description: 'Attest with the local TPM: a quote by an attestation key certified by the CA the control plane trusts',
  properties: {
    akCertFile: { type: 'string', required: true, minLength: 1, description: 'PEM: the AK certificate first, then intermediates' },
    ak: { type: 'string', minLength: 1, default: DEFAULT_AK_HANDLE, description: 'Persistent handle or context file of the AK (tpm2_quote -c)' },
    tcti: { type: 'string', minLength: 1, description: 'TPM2TOOLS_TCTI, e.g. device:/dev/tpmrm0; default: the tpm2-tools default' },
    hash: {
      type: 'string',
      enum: ['sha256', 'sha384', 'sha512'],
      description: "Only for a key without a signing scheme of its own (default sha256); an AK's hash is read from it, and another one here is an error",
    },
  },
};

/** The block as the schema gives it (its defaults filled in). */
export interface TpmEvidenceInput {
  akCertFile: string;
  ak: string;
  tcti?: string;
  hash?: 'sha256' | 'sha384' | 'sha512';
}

export interface TpmEvidenceConfig {
  /** Absolute path. */
  readonly akCertFile: string;
  readonly quoter: Pick<TpmQuoterOptions, 'ak' | 'tcti' | 'hash'>;
}

export function resolveTpmEvidenceConfig(raw: TpmEvidenceInput, base: string): TpmEvidenceConfig {
  // A context file is a path like akCertFile; a handle is hex.
  const { ak } = raw;
  return {
    akCertFile: resolve(base, raw.akCertFile),
    quoter: { ak: /^0x[0-9a-fA-F]{8}$/.test(ak) ? ak : resolve(base, ak), ...(raw.tcti ? { tcti: raw.tcti } : {}), ...(raw.hash ? { hash: raw.hash } : {}) },
  };
}
