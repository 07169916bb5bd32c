// TPM attestation evidence for one SignSvid call: a fresh nonce from the control plane (TpmChallenge), a quote by
// the local TPM's attestation key over the PCRs it asked for with qualifying data SHA-256(nonce || the CSR's
// SubjectPublicKeyInfo), and the AK certificate chain (re-read each time, so a renewed certificate is picked up).
import type { TpmChallengeResponseMsg, TpmEvidenceMsg } from '../../../../common/contract/identity-v1.js';
import { TesseraError } from '../../../../common/errors.js';
import { DerError, children, readNode } from '../../../../common/pki/der.js';
import { decodeCertificates } from '../../../../common/pki/pem.js';
import { canonicalSpki, tpmQualifyingData } from '../../../../common/pki/tpm-binding.js';
import { readSmallFileBytes } from '../../../../shared-io/bounded-read.js';
import type { TpmQuoter } from './tpm-quoter.js';

export interface TpmEvidenceSourceOptions {
  readonly quoter: Pick<TpmQuoter, 'quote'>;
  /** PEM: the AK certificate first, then any intermediates. */
  readonly akCertFile: string;
}

/** The SubjectPublicKeyInfo of a DER PKCS#10 CSR, in the canonical encoding the control plane hashes. */
export function csrSpkiDer(csrDer: Uint8Array): Buffer {
  try {
    const root = readNode(csrDer, 0);
    const info = children(csrDer, root)[0];
    if (!info) throw new DerError('no CertificationRequestInfo');
    // version, subject, subjectPKInfo: the SPKI's own header starts where the subject ends.
    const [, subject, spki] = children(csrDer, info);
    if (!subject || !spki || spki.tag !== 0x30) throw new DerError('no subjectPKInfo');
    return canonicalSpki(csrDer.subarray(subject.end, spki.end));
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED', `the CSR to bind has no readable public key (${(e as Error).message})`);
  }
}

export class TpmEvidenceSource {
  readonly #o: TpmEvidenceSourceOptions;

  constructor(opts: TpmEvidenceSourceOptions) {
    this.#o = opts;
  }

  readonly description = 'TPM attestation key';

  /** Evidence for `csrDer`; `challenge` asks the control plane for the nonce (Identity/TpmChallenge). */
  async evidence(csrDer: Uint8Array, challenge: () => Promise<TpmChallengeResponseMsg>): Promise<TpmEvidenceMsg> {
    const chain = await this.#akChain();
    const spki = csrSpkiDer(csrDer);
    const c = await challenge();
    const { quote, signature } = await this.#o.quoter.quote({ qualifyingData: tpmQualifyingData(c.nonce, spki), pcrBank: c.pcr_bank, pcrs: c.pcrs });
    return { ak_cert_chain: chain, quote, signature, nonce: c.nonce };
  }

  async #akChain(): Promise<Buffer[]> {
    const file = this.#o.akCertFile;
    let text: Buffer;
    try {
      // A chain of a few certificates: a regular file of at most 1 MiB, never a FIFO or a device read without end.
      text = readSmallFileBytes(file, 1 << 20);
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_IDENTITY_FILE_UNREADABLE', `AK certificate ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
    }
    let certs: Buffer[];
    try {
      certs = decodeCertificates(text);
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_IDENTITY_FILE_MALFORMED', `AK certificate ${file}: ${(e as Error).message}`, { file });
    }
    if (certs.length === 0) throw new TesseraError('TESSERA_ERR_IDENTITY_FILE_MALFORMED', `AK certificate ${file}: no CERTIFICATE block`, { file });
    return certs;
  }
}
