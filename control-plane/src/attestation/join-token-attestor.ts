// Join-token attestation: the token (looked up by its hash) names the SPIFFE ID; it must be unexpired, unused
// and not revoked. It is not spent here: the issuer spends it in the commit that records the SVID it signed, by one
// conditional update (so two uses racing, on one replica or two, cannot both win, and a crash strands none).
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { hashToken, tokenIdOf } from '../store/join-token.js';
import type { TokenRecord, TokenStore } from '../store/store-contract.js';
import type { AttestedIdentity } from './attested-identity.js';

/** Tokens longer than this are refused before hashing (a real one is 43 characters). */
const MAX_TOKEN_LENGTH = 512;

export class JoinTokenAttestor {
  readonly #tokens: TokenStore;
  readonly #clock: Clock;

  constructor(tokens: TokenStore, clock: Clock) {
    this.#tokens = tokens;
    this.#clock = clock;
  }

  async attest(token: string): Promise<AttestedIdentity> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new TesseraError('TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN');
    const hash = hashToken(token);
    const rec = await this.#tokens.find(hash);
    const now = this.#clock.nowMs();
    if (!rec) throw new TesseraError('TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN');
    const attestedAs = `join_token:${tokenIdOf(hash)}`;
    const refused = refusalOf(rec, now);
    if (refused) throw new TesseraError(refused, undefined, { attestedAs });
    return {
      spiffeId: SpiffeId.parse(rec.spiffeId),
      attestor: 'join_token',
      attestedAs,
      joinTokenHash: hash,
    };
  }

  /**
   * Why the token `hash` could not be spent by the commit at `nowMs` (its conditional update matched nothing): it was
   * revoked, used or expired meanwhile; each is final, so the row read now says which (audit 40a F1: all were USED).
   */
  async whyUnspent(hash: string, nowMs: number): Promise<TokenRefusal> {
    const rec = await this.#tokens.find(hash);
    return (rec && refusalOf(rec, nowMs)) ?? 'TESSERA_ERR_ATTESTATION_TOKEN_USED';
  }
}

type TokenRefusal = 'TESSERA_ERR_ATTESTATION_TOKEN_REVOKED' | 'TESSERA_ERR_ATTESTATION_TOKEN_USED' | 'TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED';

/** Why a token cannot be spent at `nowMs`, or undefined when it can. */
function refusalOf(rec: Pick<TokenRecord, 'revokedAtMs' | 'usedAtMs' | 'expiresAtMs'>, nowMs: number): TokenRefusal | undefined {
  if (rec.revokedAtMs !== null) return 'TESSERA_ERR_ATTESTATION_TOKEN_REVOKED';
  if (rec.usedAtMs !== null) return 'TESSERA_ERR_ATTESTATION_TOKEN_USED';
  if (rec.expiresAtMs <= nowMs) return 'TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED';
  return undefined;
}
