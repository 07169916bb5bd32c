// Join-token attestation: the token (looked up by its hash) names the SPIFFE ID; it must be unexpired, unused
// and not revoked. It is not spent here: the issuer spends it in the commit that records the SVID it signed, by one
// conditional update (so two uses racing, on one replica or two, cannot both win, and a crash strands none).
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { hashToken, tokenIdOf } from '../store/join-token.js';
import type { TokenStore } from '../store/store-contract.js';
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
    if (rec.revokedAtMs !== null) throw new TesseraError('TESSERA_ERR_ATTESTATION_TOKEN_REVOKED', undefined, { attestedAs });
    if (rec.usedAtMs !== null) throw new TesseraError('TESSERA_ERR_ATTESTATION_TOKEN_USED', undefined, { attestedAs });
    if (rec.expiresAtMs <= now) throw new TesseraError('TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED', undefined, { attestedAs });
    return {
      spiffeId: SpiffeId.parse(rec.spiffeId),
      attestor: 'join_token',
      attestedAs,
      joinTokenHash: hash,
    };
  }
}
