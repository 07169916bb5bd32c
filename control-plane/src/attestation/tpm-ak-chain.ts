// The attestation key's certificate: the AK certificate a proxy presents must chain, through the intermediates it
// sends, to a CA of attestors.tpm.caFile, every certificate valid now and the path held to the rules peer chains
// meet (pathLenConstraint, SHA-2 signatures, RSA >= 2048 with an exponent up to 2^31-1 / P-256 / P-384 keys, nothing
// unrelated or repeated sent; no TLS purpose asked of it); the AK certificate itself is an end-entity certificate for
// signing. Its public key is the key the quote must be signed by. Signatures are checked only on a path that reaches
// caFile, from the CA down (x509-path.ts). Whether the path says the key is an attestation key (TCG's
// tcg-kp-AIKCertificate purpose) is reported, not required: a PCR policy needs it (tpm-attestor.ts).
import { type KeyObject, X509Certificate, createHash } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { chainSizeFault } from '../../../common/pki/chain-size.js';
import { DerError } from '../../../common/pki/der.js';
import { commonNamesOf } from '../../../common/pki/subject-names.js';
import { type CertFields, readCertFields } from '../../../common/spiffe/x509-fields.js';
import { keyWeakness, signatureWeakness } from '../../../common/spiffe/x509-strength.js';
import { buildPath } from '../../../common/spiffe/x509-path.js';
import { checkPath } from '../../../common/spiffe/x509-svid.js';

/** AK certificate plus intermediates: real IAK chains (vendor root, issuing CA) are 2–3 deep. */
const MAX_CHAIN = 4;
const MAX_CERT_BYTES = 16 * 1024;

/**
 * tcg-kp-AIKCertificate: the TCG key purpose of a certificate for an attestation key (AK, IAK, LAK), a restricted
 * key that signs only what the TPM itself made. An IEEE 802.1AR DevID's certificate is not for this purpose: a
 * DevID key is not restricted, so its holder can sign a quote it wrote itself.
 */
export const TCG_KP_AIK_CERTIFICATE = '2.23.133.8.3';

export interface CertifiedAk {
  readonly cert: X509Certificate;
  readonly publicKey: KeyObject;
  /** SHA-256 of the AK's DER SubjectPublicKeyInfo, lower-case hex (64 characters). */
  readonly keyHash: string;
  /** The subject's common name, when it has exactly one. */
  readonly commonName: string | undefined;
  /**
   * Why the path does not certify an attestation key (tcg-kp-AIKCertificate), for an audit line; null when it does:
   * the AK certificate's extendedKeyUsage lists the purpose and no CA on the path restricts its purposes without it.
   */
  readonly notAttestationKey: string | null;
}

function untrusted(reason: string): TesseraError {
  return new TesseraError('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED', undefined, { reason });
}

/** The subject's one CN; undefined without one or with several. */
function commonNameOf(cert: X509Certificate): string | undefined {
  const cns = commonNamesOf(cert);
  return cns.length === 1 ? cns[0] : undefined;
}

const subjectOf = (c: X509Certificate) => c.subject.replaceAll('\n', ', ');

/**
 * The AK certificate must name the purpose itself (no extendedKeyUsage is no purpose, anyExtendedKeyUsage is no
 * claim about the key); a CA that lists purposes certifies only those (as caRuleFailure reads a CA's list).
 */
function attestationKeyFault(akFields: CertFields, path: readonly X509Certificate[]): string | null {
  const eku = akFields.extKeyUsage;
  if (eku === null) return `the AK certificate has no extendedKeyUsage (it must list tcg-kp-AIKCertificate ${TCG_KP_AIK_CERTIFICATE})`;
  if (!eku.includes(TCG_KP_AIK_CERTIFICATE)) return `the AK certificate's extendedKeyUsage (${eku.join(', ')}) lacks tcg-kp-AIKCertificate ${TCG_KP_AIK_CERTIFICATE}`;
  for (const ca of path.slice(1)) {
    const caEku = readCertFields(ca.raw).extKeyUsage;
    if (caEku !== null && !caEku.includes(TCG_KP_AIK_CERTIFICATE)) return `the CA certificate ${subjectOf(ca)} restricts extendedKeyUsage to ${caEku.join(', ')}, without tcg-kp-AIKCertificate ${TCG_KP_AIK_CERTIFICATE}`;
  }
  return null;
}

/**
 * Verifies the chain (DER, AK certificate first) against `anchors` at `nowMs`. Throws
 * TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED (does not parse, not an end-entity signing certificate, not certified by
 * an anchor) or TESSERA_ERR_ATTESTATION_TPM_AK_EXPIRED (a certificate on the path is expired or not yet valid).
 */
export function verifyAkChain(chainDer: readonly Uint8Array[], anchors: readonly X509Certificate[], nowMs: number): CertifiedAk {
  if (chainDer.length === 0) throw untrusted('no AK certificate was sent');
  if (chainDer.length > MAX_CHAIN) throw untrusted(`${chainDer.length} certificates, more than ${MAX_CHAIN}`);
  const certs: X509Certificate[] = [];
  for (const [i, der] of chainDer.entries()) {
    if (der.length > MAX_CERT_BYTES) throw untrusted(`certificate ${i} is ${der.length} bytes, more than ${MAX_CERT_BYTES}`);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(der));
    } catch {
      throw untrusted(`certificate ${i} does not parse`);
    }
    // OpenSSL also reads BER lengths and ignores trailing bytes; only DER is a certificate's one encoding, so a
    // copy re-encoded cannot pass for another certificate below.
    if (!cert.raw.equals(der)) throw untrusted(`certificate ${i} is not DER-encoded (or has trailing bytes)`);
    certs.push(cert);
  }
  // As for peer chains: each certificate once (a repeated one is at best a mistake, and grows what is parsed).
  const repeated = chainSizeFault(chainDer);
  if (repeated) throw untrusted(`the chain ${repeated}`);
  const ak = certs[0]!;
  let fields: ReturnType<typeof readCertFields>;
  try {
    fields = readCertFields(ak.raw);
  } catch (e) {
    if (e instanceof DerError) throw untrusted(`the AK certificate's extensions do not parse (${e.message})`);
    throw e;
  }
  if (fields.isCa) throw untrusted('the AK certificate is a CA certificate');
  if (fields.keyUsage && !fields.keyUsage.digitalSignature) throw untrusted('the AK certificate lacks keyUsage digitalSignature');
  if (fields.unknownCritical.length) throw untrusted(`the AK certificate has unknown critical extension(s) ${fields.unknownCritical.join(', ')}`);
  // The AK's own key and signature rules first: its key checks the quote, so it is held to them before anything.
  const sig = signatureWeakness(fields.signature);
  const weak = keyWeakness(fields.key) ?? (sig ? `a signature with ${sig}` : null);
  if (weak) throw untrusted(`the AK certificate has ${weak}`);
  // Signatures are checked only on a path that reaches caFile, from the CA down, and with no key past the exponent
  // bound (x509-path.ts): a caller with a free nonce cannot make this verify with keys of its choosing.
  const built = buildPath(ak, certs.slice(1), anchors);
  if (!built.ok) {
    throw untrusted(
      built.weakKey
        ? `the chain holds ${built.weakKey}`
        : built.badSignature
          ? 'a signature on the AK certificate chain does not verify'
          : built.intermediateNotCa
            ? 'an intermediate is not a CA'
            : 'not certified by a CA of attestors.tpm.caFile',
    );
  }
  for (const c of built.path) {
    if (nowMs < c.validFromDate.getTime() || nowMs > c.validToDate.getTime()) {
      const which = c === ak ? 'the AK certificate' : `the CA certificate ${subjectOf(c)}`;
      throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_AK_EXPIRED', undefined, { reason: `${which} is valid ${c.validFromDate.toISOString()} … ${c.validToDate.toISOString()}` });
    }
  }
  const broken = checkPath(certs, built.path, nowMs, anchors, undefined, 'attestation');
  if (broken) throw untrusted(broken.message);
  const spki = ak.publicKey.export({ format: 'der', type: 'spki' });
  return {
    cert: ak,
    publicKey: ak.publicKey,
    keyHash: createHash('sha256').update(spki).digest('hex'),
    commonName: commonNameOf(ak),
    // The path's certificates parsed already in checkPath: reading a CA's fields again cannot throw.
    notAttestationKey: attestationKeyFault(fields, built.path),
  };
}
