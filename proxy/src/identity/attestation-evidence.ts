// Attestation evidence for the first contact with the control plane: an inline join token (single-use), a
// join-token file, a Kubernetes projected service-account token file (re-read on every attestation), or the local
// TPM (a quote made per attestation, over the control plane's nonce and the CSR's key: the client asks for both).
import { TesseraError } from '../../../common/errors.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';
import type { TpmEvidenceConfig } from './tpm/tpm-evidence-config.js';
import { TpmEvidenceSource } from './tpm/tpm-evidence.js';
import { TpmQuoter } from './tpm/tpm-quoter.js';

export type AttestationEvidence =
  | { readonly kind: 'join_token'; readonly token: string }
  | { readonly kind: 'kubernetes_token'; readonly token: string }
  /** Evidence made per request: it binds the control plane's nonce and the CSR (ControlPlaneClient.attest). */
  | { readonly kind: 'tpm'; readonly source: Pick<TpmEvidenceSource, 'evidence'> };

export interface EvidenceProvider {
  /** Fresh evidence for one attestation. */
  read(): Promise<AttestationEvidence>;
  /** Whether evidence can still be had after a successful attestation (files: yes; an inline token: no). */
  canReattest(): boolean;
  /** Called after a successful attestation (an inline token is spent then). */
  consumed(): void;
  /** What the evidence is, for logs (never the token itself). */
  readonly description: string;
}

export interface EvidenceConfig {
  readonly joinToken?: string;
  readonly joinTokenFile?: string;
  readonly kubernetesTokenFile?: string;
  readonly tpm?: TpmEvidenceConfig;
}

export function evidenceProvider(cfg: EvidenceConfig): EvidenceProvider {
  if (cfg.tpm) {
    // A TPM can always quote again: like a token file, a proxy whose SVID lapsed re-attests by itself.
    const source = new TpmEvidenceSource({ quoter: new TpmQuoter(cfg.tpm.quoter), akCertFile: cfg.tpm.akCertFile });
    return { description: `TPM attestation key ${cfg.tpm.quoter.ak}`, read: async () => ({ kind: 'tpm', source }), canReattest: () => true, consumed: () => {} };
  }
  if (cfg.joinToken !== undefined) {
    let spent = false;
    const token = cfg.joinToken;
    return {
      description: 'inline join token',
      read: async () => ({ kind: 'join_token', token }),
      canReattest: () => !spent,
      consumed: () => {
        spent = true;
      },
    };
  }
  const file = cfg.joinTokenFile ?? cfg.kubernetesTokenFile;
  if (file === undefined) throw new TesseraError('TESSERA_ERR_IDENTITY_TOKEN_UNREADABLE', 'no joinToken, joinTokenFile, kubernetesTokenFile or tpm configured');
  const kind = cfg.joinTokenFile !== undefined ? 'join_token' : 'kubernetes_token';
  return {
    description: `${kind === 'join_token' ? 'join token' : 'kubernetes token'} file ${file}`,
    read: async () => ({ kind, token: await readToken(file) }),
    canReattest: () => true,
    consumed: () => {},
  };
}

async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    // A token is a few KiB: a regular file of at most 1 MiB, never a FIFO or a device read without end.
    text = readSmallFile(file, 1 << 20);
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_IDENTITY_TOKEN_UNREADABLE', `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const token = text.trim();
  if (token === '') throw new TesseraError('TESSERA_ERR_IDENTITY_TOKEN_UNREADABLE', `${file} is empty`);
  return token;
}
