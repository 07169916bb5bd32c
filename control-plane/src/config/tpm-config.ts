// The control plane's `attestors.tpm` config block: the CA that certifies attestation keys, an optional PCR
// policy, the SPIFFE ID template and the nonce lifetime. Schema (hooked into cp-config.ts's attestors) and
// resolution with the checks a schema cannot make (PCR indices, digest sizes of the bank).
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import type { TesseraError } from '../../../common/errors.js';
import { DEFAULT_TPM_ID_TEMPLATE, checkIdTemplate } from '../attestation/tpm-spiffe-id.js';
import type { PcrPolicy } from '../attestation/tpm-quote-verifier.js';
import { TPM_HASH_ALGS, type TpmHashName } from '../attestation/tpm-structures.js';

const BANKS = ['sha1', 'sha256', 'sha384', 'sha512'] as const satisfies readonly TpmHashName[];
/** PC-client TPMs have 24 PCRs. */
const MAX_PCR = 23;
const HEX = /^(0x)?([0-9a-fA-F]+)$/;

const checkHex = (v: string): string | null => (HEX.test(v) ? null : `"${v.slice(0, 80)}" is not a hex digest (quote it in YAML)`);

export const TPM_ATTESTOR_SCHEMA: ObjectSchema = {
  type: 'object',
  description: 'TPM attestation: a quote by an attestation key certified by caFile, over a fresh nonce bound to the CSR key',
  properties: {
    caFile: { type: 'string', required: true, minLength: 1, description: 'PEM CA certificate(s) that certify attestation keys (AK / IAK, never a DevID key)' },
    pcrPolicy: {
      type: 'object',
      description: 'Only machines in this measured state; the AK certificate must then list tcg-kp-AIKCertificate (2.23.133.8.3)',
      properties: {
        bank: { type: 'string', enum: BANKS, default: 'sha256' },
        pcrs: { type: 'map', required: true, values: { type: 'string', check: checkHex } },
      },
    },
    idTemplate: { type: 'string', default: DEFAULT_TPM_ID_TEMPLATE, check: checkIdTemplate },
    nonceTtl: { type: 'duration', default: '60s', min: 1_000, max: 600_000 },
  },
};

/** The block as the schema gives it (its defaults filled in: the block is only read when written). */
export interface TpmAttestorInput {
  caFile: string;
  pcrPolicy?: { bank: TpmHashName; pcrs: Record<string, string> };
  idTemplate: string;
  nonceTtl: number;
}

export interface TpmAttestorConfig {
  /** Absolute path. */
  readonly caFile: string;
  readonly pcrPolicy?: PcrPolicy;
  readonly idTemplate: string;
  readonly nonceTtlMs: number;
}

/** The error for a key path below attestors.tpm (cp-config.ts turns it into file:line: key). */
type Invalid = (path: (string | number)[], message: string) => TesseraError;

export function resolveTpmAttestorConfig(raw: TpmAttestorInput, base: string, invalid: Invalid): TpmAttestorConfig {
  const at = ['attestors', 'tpm'];
  let pcrPolicy: PcrPolicy | undefined;
  if (raw.pcrPolicy) {
    const { bank } = raw.pcrPolicy;
    const size = [...TPM_HASH_ALGS.values()].find((h) => h.name === bank)!.size;
    const pcrs = new Map<number, Buffer>();
    const entries = Object.entries(raw.pcrPolicy.pcrs);
    if (entries.length === 0) throw invalid([...at, 'pcrPolicy', 'pcrs'], 'names no PCR (leave pcrPolicy out to accept any PCR values)');
    for (const [key, value] of entries) {
      // YAML reads an unquoted index as a number key: look its line up by that.
      const path = [...at, 'pcrPolicy', 'pcrs', /^[1-9]?[0-9]$/.test(key) ? Number(key) : key];
      if (!/^(0|[1-9][0-9]?)$/.test(key) || Number(key) > MAX_PCR) throw invalid(path, `"${key}" is not a PCR index (0…${MAX_PCR})`);
      const hex = HEX.exec(value)?.[2] ?? '';
      if (hex.length !== size * 2) throw invalid(path, `a ${bank} PCR value is ${size * 2} hex characters, not ${hex.length}`);
      pcrs.set(Number(key), Buffer.from(hex, 'hex'));
    }
    pcrPolicy = { bank, pcrs };
  }
  return {
    caFile: resolve(base, raw.caFile),
    ...(pcrPolicy ? { pcrPolicy } : {}),
    idTemplate: raw.idTemplate,
    nonceTtlMs: raw.nonceTtl,
  };
}
