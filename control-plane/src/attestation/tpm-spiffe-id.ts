// The SPIFFE ID a TPM-attested proxy gets, from its certified attestation key: by default
// spiffe://<td>/tpm/<first 32 hex of SHA-256 of the AK public key>, or attestors.tpm.idTemplate, a path whose
// {akHash} and {cn} (the AK certificate's subject common name) are filled in. Never from anything the caller says.
import { TesseraError, describeError } from '../../../common/errors.js';
import { SpiffeId, validatePath } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';

export const DEFAULT_TPM_ID_TEMPLATE = '/tpm/{akHash}';
/** 128 bits of the key hash: collision-free for any fleet, short enough to read. */
const AK_HASH_CHARS = 32;
const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN = new Set(['akHash', 'cn']);
/** A common name fills one path segment: SPIFFE path characters only, never "." or "..". */
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** A schema check of idTemplate: null when it is a path whose placeholders are {akHash} and {cn} only. */
export function checkIdTemplate(template: string): string | null {
  if (!template.startsWith('/')) return `"${template}" must be a path starting with "/" (the trust domain is the control plane's)`;
  for (const m of template.matchAll(PLACEHOLDER)) if (!KNOWN.has(m[1]!)) return `unknown placeholder {${m[1]}} (use {akHash} or {cn})`;
  const sample = template.replaceAll('{akHash}', 'a'.repeat(AK_HASH_CHARS)).replaceAll('{cn}', 'node-1');
  if (/[{}]/.test(sample)) return `"${template}" has an unbalanced brace`;
  try {
    validatePath(sample);
  } catch (e) {
    return `"${template}" does not make a valid SPIFFE ID path (${describeError(e)})`;
  }
  return null;
}

/** Fills the template; throws TESSERA_ERR_ATTESTATION_TPM_NO_ID when {cn} is needed and the AK has no usable one. */
export function tpmSpiffeId(td: TrustDomain, template: string, ak: { readonly keyHash: string; readonly commonName: string | undefined }): SpiffeId {
  let path = template.replaceAll('{akHash}', ak.keyHash.slice(0, AK_HASH_CHARS));
  if (path.includes('{cn}')) {
    const cn = ak.commonName;
    if (cn === undefined || !SEGMENT.test(cn) || cn === '.' || cn === '..') {
      throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NO_ID', undefined, { reason: cn === undefined ? 'the AK certificate has no single subject CN' : `the AK certificate's CN ${JSON.stringify(cn.slice(0, 64))} is not a SPIFFE path segment` });
    }
    path = path.replaceAll('{cn}', cn);
  }
  const parsed = SpiffeId.tryParse(`${td.idString()}${path}`);
  if (!parsed.ok) throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NO_ID', undefined, { reason: `${path.slice(0, 200)} is not a SPIFFE ID path (${parsed.error.code})` });
  return parsed.id;
}
