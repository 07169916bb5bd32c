// tessera.identity.v1.Identity/SignSvid: decodes the request (size-capped, malformed messages answered with a
// proper status instead of a transport error), hands it to the Issuer, maps the outcome to the wire. Also
// Identity/TpmChallenge, the nonce a TPM quote for SignSvid must bind (the Issuer's TPM attestor makes it).
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import type { Evidence, Issuer } from '../issuance/issuer.js';
import { toGrpcError } from './grpc-status.js';
import { tpmEvidenceFromMessage } from '../attestation/tpm-attestor.js';
import { tpmChallengeHandler } from '../attestation/tpm-challenge-rpc.js';
import type { SignSvidRequestMsg, SignSvidResponseMsg } from '../../../common/contract/identity-v1.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import { trustBundleMsg } from './bundle-message.js';
import { RejectedMessage } from './guarded-service.js';

export interface IdentityServiceDeps {
  readonly issuer: Issuer;
  /** The caller's DER chain over mTLS. */
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Audits and counts a request refused before it reached the issuer. */
  readonly onRejected: (code: string, caller: string, size: number | undefined) => void;
  /** The JWT-SVID keys published with the bundle (the answer carries the whole bundle). */
  readonly jwtAuthorities?: () => readonly JwtAuthority[];
  /** The clock a call's deadline is read on: grpc-js sets deadlines by Date.now(), so the real one is systemClock. */
  readonly deadlineClock: Clock;
}

const MAX_TTL_SECONDS = 366 * 24 * 3600;

export function identityHandlers(deps: IdentityServiceDeps): grpc.UntypedServiceImplementation {
  return {
    SignSvid: (call: grpc.ServerUnaryCall<SignSvidRequestMsg | RejectedMessage, SignSvidResponseMsg>, callback: grpc.sendUnaryData<SignSvidResponseMsg>) => {
      const caller = call.getPeer();
      const req = call.request;
      if (req instanceof RejectedMessage) {
        deps.onRejected(req.code, caller, req.size);
        callback(toGrpcError(new TesseraError(req.code)));
        return;
      }
      const evidence: Evidence =
        req.evidence === 'join_token' ? { kind: 'join_token', token: req.join_token ?? '' }
        : req.evidence === 'k8s_sa_token' ? { kind: 'k8s_sa_token', token: req.k8s_sa_token ?? '' }
        : req.evidence === 'tpm' ? { kind: 'tpm', evidence: tpmEvidenceFromMessage(req.tpm) }
        : { kind: 'none' };
      // The caller gave up: cancelled, or its deadline passed (grpc-js answers DEADLINE_EXCEEDED then without
      // cancelling the call; its deadline is on grpc-js's clock, deadlineClock).
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      const deadline = Number(call.getDeadline());
      const gone = () => cancelled || call.cancelled || deadline <= deps.deadlineClock.nowMs();
      const ttlSeconds = Math.max(0, Math.min(Number(req.ttl_seconds ?? 0) || 0, MAX_TTL_SECONDS));
      deps.issuer
        .sign({ csrDer: req.csr ?? Buffer.alloc(0), evidence, peerChain: deps.peerChain(call), caller, requestedTtlMs: ttlSeconds * 1000, gone })
        .then(
          (r) =>
            callback(null, {
              svid_chain: [...r.chainDer],
              bundles: [trustBundleMsg(r.bundle, deps.jwtAuthorities?.() ?? [])],
              spiffe_id: r.spiffeId,
              not_after_unix_ms: String(r.notAfterMs),
              serial: r.serial,
            }),
          (e: unknown) => callback(toGrpcError(e)),
        );
    },
    // Without attestors.tpm it answers TESSERA_ERR_ATTESTATION_DISABLED (audited and counted by onRejected).
    TpmChallenge: tpmChallengeHandler({ ...(deps.issuer.tpm ? { tpm: deps.issuer.tpm } : {}), onRejected: deps.onRejected }),
  };
}
