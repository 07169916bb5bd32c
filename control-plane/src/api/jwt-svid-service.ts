// tessera.identity.v1.Identity/MintJwtSvid: a JWT-SVID for the caller's own SPIFFE ID, proven by its client SVID
// over mTLS (the subject is never taken from the request); audience required, short TTL, audited and counted.
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { MintJwtSvidRequestMsg, MintJwtSvidResponseMsg } from '../../../common/contract/identity-v1.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { checkAudience } from '../../../common/spiffe/jwt-audience.js';
import { signJwtSvid } from '../../../common/spiffe/jwt-svid.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { checkIssuableId } from '../../../common/spiffe/workload-id.js';
import { refusalAuditFields } from '../attestation/attested-identity.js';
import type { SvidAttestor } from '../attestation/svid-attestor.js';
import type { JwtSigningKey } from '../ca/jwt-keys.js';
import { audienceSummary } from './audience-summary.js';
import type { AuditLog } from '../store/store-contract.js';
import { RejectedMessage } from './guarded-service.js';
import { toGrpcError } from './grpc-status.js';
import { svidRefusal } from './svid-refusal.js';

export const JWT_SVID_DEFAULT_TTL_MS = 5 * 60_000;
/** Retired JWT keys stay published this long (longer than any JWT-SVID issued: at most JWT_SVID_DEFAULT_TTL_MS). */
export const JWT_SVID_MAX_TTL_MS = 60 * 60_000;

export interface JwtSvidServiceDeps {
  /** The control plane's trust domain: only its workload IDs get a token (the issuance rule, as for renewal). */
  readonly trustDomain: TrustDomain;
  readonly svids: SvidAttestor;
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Operator bans: throws TESSERA_ERR_REVOCATION_* for a banned ID or serial. */
  readonly admit: (spiffeId: string, serial: string) => void;
  /** The same bans read from the store, asked right before signing: a ban another replica committed holds at once. */
  readonly admitStored?: (spiffeId: string, serial: string) => Promise<void>;
  /** Rate limit per caller; false = refuse. */
  readonly take: (key: string) => boolean;
  /** The serial a caller SVID's chain of renewals began with (Issuer.lineageOf): one pod's bucket across renewals. */
  readonly lineageOf?: (serial: string) => Promise<string>;
  readonly signingKey: () => JwtSigningKey;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly onIssued: () => void;
  readonly onRefused: (code: string) => void;
}

export function jwtSvidHandlers(d: JwtSvidServiceDeps): grpc.UntypedServiceImplementation {
  return {
    MintJwtSvid: async (call: grpc.ServerUnaryCall<MintJwtSvidRequestMsg | RejectedMessage, MintJwtSvidResponseMsg>, callback: grpc.sendUnaryData<MintJwtSvidResponseMsg>) => {
      const caller = call.getPeer();
      let now = d.clock.nowMs();
      let spiffeId: string | undefined;
      try {
        const req = call.request;
        if (req instanceof RejectedMessage) throw new TesseraError(req.code);
        let peer: ReturnType<SvidAttestor['attest']>;
        try {
          peer = d.svids.attest(d.peerChain(call));
        } catch (e) {
          // Told as renewal and the streams tell it (NO_EVIDENCE, SVID_INVALID); its reason stays for the audit row.
          throw svidRefusal(e);
        }
        spiffeId = peer.spiffeId.toString();
        d.admit(spiffeId, peer.serial);
        // What renewal refuses to this leaf, a token must not give: the control plane's own ID (its SVID verifies
        // against the bundle too), the bare trust-domain ID, another trust domain's.
        checkIssuableId(peer.spiffeId, d.trustDomain);
        const audience = checkAudience(req.audience ?? []);
        // Per pod (its SVIDs' chain of renewals), not per ID: one replica asking for many audiences must not starve
        // its siblings, nor get a fresh bucket with each renewal.
        const lineage = d.lineageOf ? await d.lineageOf(peer.serial) : peer.serial;
        if (!d.take(`jwt:${spiffeId}:${lineage}`)) throw new TesseraError('TESSERA_ERR_ISSUANCE_RATE_LIMITED');
        if (d.admitStored) {
          await d.admitStored(spiffeId, peer.serial);
          now = d.clock.nowMs();
        }
        const asked = Number(req.ttl_seconds ?? 0) * 1000;
        // A shorter lifetime may be asked, never a longer one: a bearer token outlives a ban of its subject until it expires.
        const ttlMs = Number.isFinite(asked) && asked > 0 ? Math.min(asked, JWT_SVID_DEFAULT_TTL_MS) : JWT_SVID_DEFAULT_TTL_MS;
        const key = d.signingKey();
        // Whole seconds on the wire: exp is what the token says, so the answer says the same.
        const iatMs = Math.floor(now / 1000) * 1000;
        const expMs = Math.floor((now + ttlMs) / 1000) * 1000;
        const token = signJwtSvid({ privateKey: key.privateKey, keyId: key.keyId, spiffeId, audience, issuedAtMs: iatMs, expiresAtMs: expMs });
        d.audit.record(now, { event: 'jwt_svid.issued', result: 'issued', caller, spiffeId, ...audienceSummary(audience), kid: key.keyId, notAfterMs: expMs });
        d.onIssued();
        callback(null, { token, spiffe_id: spiffeId, issued_at_unix_ms: String(iatMs), expires_at_unix_ms: String(expMs) });
      } catch (e) {
        const err = isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL');
        d.audit.record(now, { event: 'jwt_svid.refused', result: 'refused', caller, code: err.code, ...(spiffeId ? { spiffeId } : {}), ...refusalAuditFields(err.details) });
        d.onRefused(err.code);
        callback(toGrpcError(err));
      }
    },
  };
}
