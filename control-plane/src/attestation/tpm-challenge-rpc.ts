// tessera.identity.v1.Identity/TpmChallenge: hands out a sealed nonce and the PCR selection to quote. Issuing
// keeps no state, so the call needs no rate limit of its own; without attestors.tpm it answers
// TESSERA_ERR_ATTESTATION_DISABLED. Mounted beside SignSvid by identityHandlers() (api/identity-service.ts).
import type * as grpc from '@grpc/grpc-js';
import type { TpmChallengeResponseMsg } from '../../../common/contract/identity-v1.js';
import { TesseraError } from '../../../common/errors.js';
import { toGrpcError } from '../api/grpc-status.js';
import { RejectedMessage } from '../api/guarded-service.js';
import type { TpmAttestor } from './tpm-attestor.js';

export interface TpmChallengeDeps {
  readonly tpm?: Pick<TpmAttestor, 'challenge'>;
  /** Audits and counts a request refused before it was answered (too large, malformed, TPM attestation off). */
  readonly onRejected: (code: string, caller: string, size: number | undefined) => void;
}

export function tpmChallengeHandler(deps: TpmChallengeDeps): grpc.handleUnaryCall<unknown, TpmChallengeResponseMsg> {
  return (call, callback) => {
    const req = call.request;
    if (req instanceof RejectedMessage) {
      deps.onRejected(req.code, call.getPeer(), req.size);
      callback(toGrpcError(new TesseraError(req.code)));
      return;
    }
    if (!deps.tpm) {
      deps.onRejected('TESSERA_ERR_ATTESTATION_DISABLED', call.getPeer(), undefined);
      callback(toGrpcError(new TesseraError('TESSERA_ERR_ATTESTATION_DISABLED', 'TPM attestation is not configured')));
      return;
    }
    const c = deps.tpm.challenge();
    callback(null, { nonce: c.nonce, expires_at_unix_ms: String(c.expiresAtMs), pcr_bank: c.pcrBank, pcrs: [...c.pcrs] });
  };
}
