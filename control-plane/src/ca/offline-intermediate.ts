// The offline-root flow's two ends on this side: the CSR for an intermediate whose key is made here (the root holder
// signs it elsewhere), and the checks a certificate that comes back must pass before anything is signed with it.
// Each fault has its own stable code and a reason (the metric label); the first fault found is the one reported,
// in the order: parse, root (its key before its self-signature is checked with it), signature, key, CA rights, what
// the SVID verifier asks of a CA, names, validity (an intermediate that outlives its root last: its chain would end
// at the root's date while it still looked valid).
import { X509Certificate } from 'node:crypto';
import { type ErrorCode, TesseraError } from '../../../common/errors.js';
import { createCsr } from '../../../common/pki/csr.js';
import { type KeyPair, keyMatchesPublicKey } from '../../../common/pki/keys.js';
import { decodeCertificates, encodePem } from '../../../common/pki/pem.js';
import { x509 } from '../../../common/pki/x509-lib.js';
import { nameConstraintViolation } from '../../../common/spiffe/name-constraints.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { type CertFields, readCertFields } from '../../../common/spiffe/x509-fields.js';
import { caRuleFailure } from '../../../common/spiffe/x509-svid.js';

/** Why an intermediate was refused: the `reason` label of tessera_ca_intermediate_installs_total. */
export const INTERMEDIATE_REFUSAL_CODES = {
  malformed: 'TESSERA_ERR_CA_INTERMEDIATE_MALFORMED',
  root_invalid: 'TESSERA_ERR_CA_ROOT_INVALID',
  not_signed_by_root: 'TESSERA_ERR_CA_INTERMEDIATE_NOT_SIGNED',
  key_mismatch: 'TESSERA_ERR_CA_INTERMEDIATE_KEY_MISMATCH',
  not_ca: 'TESSERA_ERR_CA_INTERMEDIATE_NOT_CA',
  weak: 'TESSERA_ERR_CA_INTERMEDIATE_WEAK',
  bad_eku: 'TESSERA_ERR_CA_INTERMEDIATE_BAD_EKU',
  name_constraints: 'TESSERA_ERR_CA_INTERMEDIATE_NAME_CONSTRAINTS',
  wrong_name: 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME',
  expired: 'TESSERA_ERR_CA_INTERMEDIATE_EXPIRED',
  not_yet_valid: 'TESSERA_ERR_CA_INTERMEDIATE_NOT_YET_VALID',
  outlives_root: 'TESSERA_ERR_CA_INTERMEDIATE_OUTLIVES_ROOT',
  no_pending_request: 'TESSERA_ERR_CA_NO_PENDING_REQUEST',
} as const satisfies Record<string, ErrorCode>;

export type IntermediateRefusalReason = keyof typeof INTERMEDIATE_REFUSAL_CODES;

/** The reason label for an install refusal: the check's own, or the lifecycle's (already prepared, read-only…). */
export function installRefusalReason(e: unknown): string {
  if (!(e instanceof TesseraError)) return 'internal';
  const hit = Object.entries(INTERMEDIATE_REFUSAL_CODES).find(([, code]) => code === e.code);
  return hit ? hit[0] : e.code.replace(/^TESSERA_ERR_(CA_)?/, '').toLowerCase();
}

function refuse(reason: IntermediateRefusalReason, message: string): TesseraError {
  return new TesseraError(INTERMEDIATE_REFUSAL_CODES[reason], message, { reason });
}

export interface IntermediateToCheck {
  /** The certificate the root holder returned: the intermediate, optionally followed by the root. */
  readonly intermediatePem: string | Buffer;
  readonly rootPem: string | Buffer;
  /** The intermediate's private key (made here); null when no request is pending. */
  readonly key: KeyPair | null;
  readonly trustDomain: TrustDomain;
  readonly nowMs: number;
}

export interface CheckedIntermediate {
  readonly intermediate: X509Certificate;
  readonly root: X509Certificate;
}

function parse(pem: string | Buffer, what: string): X509Certificate[] {
  let ders: Buffer[];
  try {
    ders = decodeCertificates(typeof pem === 'string' ? pem : pem.toString('latin1'));
  } catch (e) {
    throw refuse('malformed', `the ${what} is not PEM: ${(e as Error).message}`);
  }
  if (ders.length === 0) throw refuse('malformed', `the ${what} holds no CERTIFICATE block`);
  return ders.map((der, n) => {
    try {
      const cert = new X509Certificate(der);
      if (!cert.raw.equals(der)) throw new Error('not exactly one DER certificate');
      return cert;
    } catch (e) {
      throw refuse('malformed', `certificate ${n + 1} of the ${what} does not parse: ${(e as Error).message}`);
    }
  });
}

function fieldsOf(cert: X509Certificate, what: string): CertFields {
  try {
    return readCertFields(cert.raw);
  } catch (e) {
    throw refuse('malformed', `the ${what}'s extensions do not parse: ${(e as Error).message}`);
  }
}

/** basicConstraints pathLenConstraint, undefined when absent (no limit). */
function pathLength(cert: X509Certificate): number | undefined {
  return new x509.X509Certificate(cert.raw).getExtension(x509.BasicConstraintsExtension)?.pathLength;
}

function hasKeyId(cert: X509Certificate): boolean {
  return new x509.X509Certificate(cert.raw).getExtension(x509.SubjectKeyIdentifierExtension) !== null;
}

/**
 * What every proxy's verifier (and OpenSSL) will ask of this CA certificate on each SVID's path: an accepted key
 * and, below the root, signature algorithm; an extendedKeyUsage, if any, with serverAuth and clientAuth. Refused
 * here, not found out when the first SVID it signs is refused everywhere.
 */
function checkVerifiable(f: CertFields, isRoot: boolean, what: string, td: TrustDomain): void {
  const broken = caRuleFailure(f, isRoot, () => what);
  if (broken?.code === 'TESSERA_ERR_SVID_BAD_EKU') throw refuse('bad_eku', `${broken.message}: every SVID it certifies would be refused`);
  if (broken) throw refuse('weak', `${broken.message}: every SVID it certifies would be refused`);
  // Every SVID below names this trust domain (and the intermediate does itself): its constraints must allow it.
  const why = f.nameConstraints ? nameConstraintViolation(f.nameConstraints, { uris: [td.idString()], dns: [] }) : null;
  if (why) throw refuse('name_constraints', `${what}'s name constraints refuse spiffe://${td.name}: ${why}; every SVID it certifies would be refused`);
}

/**
 * The root's own checks, as install-intermediate makes them: also run where the root signs (`tessera ca
 * sign-intermediate`), so that nothing is signed that the control plane would refuse.
 */
export function checkOfflineRoot(root: X509Certificate, td: TrustDomain): void {
  checkRoot(root, fieldsOf(root, 'root'), td);
}

/** A self-signed CA that may certify an intermediate, for no other trust domain, that verifiers will take. */
function checkRoot(root: X509Certificate, f: CertFields, td: TrustDomain): void {
  // Node reads CA:TRUE without keyCertSign as no CA at all: say which of the two is missing (audit 62h F4).
  if (f.isCa && f.keyUsage && !f.keyUsage.keyCertSign) throw refuse('root_invalid', 'the root lacks keyUsage keyCertSign');
  if (!root.ca) throw refuse('root_invalid', `the root ${root.subject.replaceAll('\n', ', ')} is not a CA certificate (basicConstraints cA is not true)`);
  // Its key is judged before any signature is checked with it (an RSA exponent past the bound every key read is held
  // to costs up to ~9 ms a check), its self-signature's included.
  checkVerifiable(f, true, 'the root', td);
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) throw refuse('root_invalid', 'the root is not self-signed (give the top of the chain, the certificate that signs itself)');
  if (f.keyUsage && !f.keyUsage.keyCertSign) throw refuse('root_invalid', 'the root lacks keyUsage keyCertSign');
  if (f.unknownCritical.length > 0) throw refuse('root_invalid', `the root carries critical extensions Tessera does not process: ${f.unknownCritical.join(', ')}`);
  const len = pathLength(root);
  if (len !== undefined && len < 1) throw refuse('root_invalid', `the root's pathlen is ${len}: it may not certify an intermediate CA (needs pathlen >= 1 or none)`);
  // A root without a URI SAN (a company root) is fine; one that names a trust domain must name this one.
  if (f.uriSans.length > 0 && (f.uriSans.length !== 1 || f.uriSans[0] !== td.idString())) throw refuse('wrong_name', `the root names ${f.uriSans.join(', ')}, not ${td.idString()}`);
}

/** Everything an intermediate must be before it signs SVIDs of `trustDomain` here; throws the first fault. */
export function checkSignedIntermediate(i: IntermediateToCheck): CheckedIntermediate {
  const roots = parse(i.rootPem, 'root');
  if (roots.length !== 1) throw refuse('malformed', `the root file holds ${roots.length} certificates; give the one root alone`);
  const root = roots[0]!;
  const sent = parse(i.intermediatePem, 'intermediate certificate');
  // An upstream may answer with the chain (intermediate, root): anything else is a deeper chain, not supported.
  if (sent.length > 2 || (sent.length === 2 && !sent[1]!.raw.equals(root.raw))) throw refuse('malformed', `the intermediate file holds ${sent.length} certificates; Tessera supports one intermediate directly under the root (the file may hold the intermediate, optionally followed by that root)`);
  const intermediate = sent[0]!;
  checkRoot(root, fieldsOf(root, 'root'), i.trustDomain);
  if (!intermediate.checkIssued(root) || !intermediate.verify(root.publicKey)) throw refuse('not_signed_by_root', `the intermediate (issuer ${intermediate.issuer.replaceAll('\n', ', ')}) is not signed by the given root (${root.subject.replaceAll('\n', ', ')})`);
  if (i.key === null) throw refuse('no_pending_request', 'no intermediate request is pending: run `tessera ca intermediate-csr` first');
  if (!keyMatchesPublicKey(i.key.privateKey, intermediate.publicKey)) throw refuse('key_mismatch', "the intermediate's public key is not the key of the pending request (was it made from another CSR?)");
  const f = fieldsOf(intermediate, 'intermediate');
  if (f.isCa && !f.keyUsage?.keyCertSign) throw refuse('not_ca', 'the intermediate lacks keyUsage keyCertSign (needs keyUsage critical, keyCertSign, cRLSign)');
  if (!intermediate.ca) throw refuse('not_ca', 'the intermediate is not a CA certificate (needs basicConstraints critical, CA:TRUE)');
  if (!f.keyUsage?.keyCertSign) throw refuse('not_ca', 'the intermediate lacks keyUsage keyCertSign (needs keyUsage critical, keyCertSign, cRLSign)');
  if (f.unknownCritical.length > 0) throw refuse('not_ca', `the intermediate carries critical extensions Tessera does not process: ${f.unknownCritical.join(', ')}`);
  if (!hasKeyId(intermediate)) throw refuse('not_ca', 'the intermediate has no subjectKeyIdentifier (add subjectKeyIdentifier=hash)');
  checkVerifiable(f, false, 'the intermediate', i.trustDomain);
  if (f.uriSans.length !== 1 || f.uriSans[0] !== i.trustDomain.idString()) throw refuse('wrong_name', `the intermediate's URI SAN is ${f.uriSans.length === 0 ? 'missing' : f.uriSans.join(', ')}; it must be exactly ${i.trustDomain.idString()}`);
  for (const [cert, what] of [[root, 'root'], [intermediate, 'intermediate']] as const) {
    if (i.nowMs < cert.validFromDate.getTime()) throw refuse('not_yet_valid', `the ${what} is not valid before ${cert.validFromDate.toISOString()}`);
    if (i.nowMs >= cert.validToDate.getTime()) throw refuse('expired', `the ${what} expired at ${cert.validToDate.toISOString()}`);
  }
  // Refused, not taken with its chain's end as the date (audit 38c F3: the mesh failed at the root's date while every
  // expiry surface showed the intermediate's): managed intermediates never outlive their root either, `tessera ca
  // sign-intermediate` caps at the root, and the root's holder can sign again to a date that is the truth.
  if (intermediate.validToDate.getTime() > root.validToDate.getTime()) {
    throw refuse(
      'outlives_root',
      `the intermediate is valid until ${intermediate.validToDate.toISOString()}, past its root's NotAfter ${root.validToDate.toISOString()}: every SVID it signs would stop verifying at the root's date while it still looked valid; have the root sign it again to end no later than the root (openssl -enddate, or \`tessera ca sign-intermediate\`, which caps it)`,
    );
  }
  return { intermediate, root };
}

/**
 * The PKCS#10 request for an intermediate of `td` (the root holder decides the extensions it signs). The subject
 * names the request's time, so successive intermediates of one root are told apart by name as well as by key.
 */
export async function intermediateCsrPem(key: KeyPair, td: TrustDomain, requestedAtMs: number): Promise<string> {
  const der = await createCsr(key, { subject: `CN=Tessera intermediate ${td.name} ${requestedAtMs}, O=Tessera`, uriSans: [td.idString()], requestCa: true });
  return encodePem('CERTIFICATE REQUEST', der);
}
