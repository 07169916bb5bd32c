// An Issuer over a test CA's real parts (control-plane-parts.ts), and the two ways a workload asks it to sign:
// attesting with a fresh join token, and renewing with the SVID it holds. For the issuance tests (bans, rate limits).
import type { Clock } from '../../common/clock.js';
import { createCsr } from '../../common/pki/csr.js';
import { rsaKeyWeakness } from '../../common/pki/rsa-key-strength.js';
import type { KeyPair } from '../../common/pki/keys.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { JoinTokenAttestor } from '../../control-plane/src/attestation/join-token-attestor.js';
import { SvidAttestor } from '../../control-plane/src/attestation/svid-attestor.js';
import { Issuer, type IssuerOptions, type SignResult } from '../../control-plane/src/issuance/issuer.js';
import { RateLimiter } from '../../control-plane/src/issuance/rate-limiter.js';
import { Revocations } from '../../control-plane/src/issuance/revocations.js';
import { DAY_MS, HOUR_MS, loud, type TestCaParts } from './control-plane-parts.js';
import { TD } from './control-plane.js';

export interface TestIssuer {
  readonly issuer: Issuer;
  /** Signs for `id` after attesting with a new join token (1 h). */
  attest(key: KeyPair, id: string): Promise<SignResult>;
  /** Renews `svid` (its chain as the peer's), for a CSR of `key`; `ttlMs` asks for a shorter lifetime. */
  renew(key: KeyPair, svid: SignResult, id: string, ttlMs?: number): Promise<SignResult>;
}

export function testIssuer(parts: TestCaParts, clock: Clock, revocations: IssuerOptions['revocations'], limiter = new RateLimiter({ burst: 1_000, perMinute: 1_000 }, clock), more: Partial<IssuerOptions> = {}): TestIssuer {
  const { store, ca } = parts;
  const issuer = new Issuer({
    trustDomain: TrustDomain.parse(TD),
    ca: () => ca.current(),
    svid: { ttlMs: HOUR_MS, maxTtlMs: DAY_MS, backdateMs: 60_000 },
    joinTokens: new JoinTokenAttestor(store.tokens, clock),
    svids: new SvidAttestor(() => ca.current().bundle, clock),
    revocations,
    limiter,
    inventory: store.inventory,
    audit: store.audit,
    clock,
    keyWeakness: async (key) => rsaKeyWeakness(key),
    ...more,
  });
  return {
    issuer,
    async attest(key, id) {
      const token = `tok-${Math.random()}`;
      await store.tokens.create(token, id, clock.nowMs(), HOUR_MS);
      return issuer.sign({ csrDer: await createCsr(key, { uriSans: [id] }), evidence: { kind: 'join_token', token }, peerChain: [], caller: 'test', requestedTtlMs: 0 });
    },
    async renew(key, svid, id, ttlMs = 0) {
      return issuer.sign({ csrDer: await createCsr(key, { uriSans: [id] }), evidence: { kind: 'none' }, peerChain: svid.chainDer, caller: 'test', requestedTtlMs: ttlMs });
    },
  };
}

/** The deny-list over a test CA's store, as the control plane opens it; `onChange` hears each ban and lift. */
export function openTestRevocations(parts: TestCaParts, clock: Clock, onChange: () => void = () => {}): Promise<Revocations> {
  const { store } = parts;
  return Revocations.open({ store: store.revocations, tokens: store.tokens, inventory: store.inventory, audit: store.audit, trustDomain: TrustDomain.parse(TD), clock, onChange, onReloadFailed: loud });
}
