// Accepting a federated trust domain's SPIFFE bundle document (no I/O): it must parse strictly, hold at least one
// x509-svid CA authority, and none of its authorities may name another trust domain than the one configured for
// the endpoint — a bundle endpoint cannot make us trust keys for a domain it does not speak for. The cheap checks run
// first; the RSA keys' strength last, each distinct key once, through the injected judge (a worker thread).
import type { KeyObject, X509Certificate } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TesseraError } from '../../../common/errors.js';
import { type BundleRsaKey, DistinctRsaKeys, checkBundleKey, type JwtAuthority, judgeBundleKeys, readSpiffeBundleSteps } from '../../../common/spiffe/spiffe-bundle.js';
import { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { namedTrustDomains } from '../../../common/spiffe/named-trust-domains.js';

export interface FederatedBundle {
  readonly bundle: TrustBundle;
  readonly jwtAuthorities: readonly JwtAuthority[];
  readonly sequence: bigint | undefined;
  readonly refreshHintSeconds: number | undefined;
  /** Entries of the document skipped as the spec says (another key type, no x5c), each with why. */
  readonly ignored: readonly string[];
}

/** Why an RSA key must not be certified, or null (the control plane's RsaKeyVerdicts, off the event loop). */
export type KeyWeakness = (key: KeyObject) => Promise<string | null>;

/** The trust domains an authority names in its SPIFFE URI SANs; unreadable extensions refuse the document. */
function authorityTrustDomains(cert: X509Certificate): string[] {
  try {
    return namedTrustDomains(cert);
  } catch {
    throw new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED', `x509-svid authority ${cert.subject}: unreadable extensions`);
  }
}

/** Steps run between two turns of the event loop: 8 entries of a document (~0.5 ms each to read at most). */
const STEPS_PER_TURN = 8;

/** Runs steps, letting the event loop serve others every STEPS_PER_TURN: a hostile document never holds it long. */
async function stepped<T>(steps: Generator<void, T>): Promise<T> {
  for (let n = 1; ; n++) {
    const step = steps.next();
    if (step.done) return step.value;
    if (n % STEPS_PER_TURN === 0) await nextTurn();
  }
}

/**
 * The trust bundle of `td` made of these authorities, when they may anchor it: at least one, all CA
 * certificates, none naming another trust domain, not all expired. Throws a coded TesseraError. The cheap rules
 * only: the RSA keys' strength is the caller's (acceptFederatedBundle, parseBootstrapBundle).
 */
export function federatedTrustBundle(authorities: readonly X509Certificate[], td: TrustDomain, nowMs: number): Promise<TrustBundle> {
  return stepped(trustBundleSteps(authorities, td, nowMs));
}

/** federatedTrustBundle, yielding before each authority (reading its SANs costs up to ~0.3 ms). */
function* trustBundleSteps(authorities: readonly X509Certificate[], td: TrustDomain, nowMs: number): Generator<void, TrustBundle> {
  if (authorities.length === 0) throw new TesseraError('TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES', `bundle for "${td.name}" holds no x509-svid key`);
  for (const cert of authorities) {
    yield;
    const other = authorityTrustDomains(cert).find((name) => name !== td.name);
    if (other !== undefined) {
      throw new TesseraError('TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN', `bundle for "${td.name}" holds an authority of "${other}" (${cert.subject})`, { trustDomain: td.name, found: other });
    }
  }
  checkNotExpired(authorities, td, nowMs);
  try {
    return new TrustBundle(td, authorities);
  } catch (e) {
    // An x509-svid key that is not a CA certificate cannot anchor anything.
    throw new TesseraError('TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES', `bundle for "${td.name}": ${(e as Error).message}`, {}, { cause: e });
  }
}

/** A bundle whose every authority has expired anchors nothing: refusing it keeps the last good one in force. */
export function checkNotExpired(authorities: readonly X509Certificate[], td: TrustDomain, nowMs: number): void {
  if (authorities.every((c) => c.validToDate.getTime() <= nowMs)) {
    throw new TesseraError('TESSERA_ERR_FEDERATION_BUNDLE_EXPIRED', `every x509-svid authority of the bundle for "${td.name}" has expired`);
  }
}

/**
 * Validates a fetched document for `td` at `nowMs`; throws a coded TesseraError naming what is wrong. The cheap rules
 * first, a few entries per turn of the event loop; then each distinct RSA key's strength, by `weakness`.
 */
export async function acceptFederatedBundle(text: string, td: TrustDomain, nowMs: number, weakness: KeyWeakness): Promise<FederatedBundle> {
  const { taken, rsaKeys } = await stepped(acceptSteps(text, td, nowMs));
  await judgeBundleKeys(rsaKeys, weakness);
  return taken;
}

function* acceptSteps(text: string, td: TrustDomain, nowMs: number): Generator<void, { taken: FederatedBundle; rsaKeys: readonly BundleRsaKey[] }> {
  const { bundle: doc, rsaKeys } = yield* readSpiffeBundleSteps(text); // TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED, _WEAK_KEY (size)
  const bundle = yield* trustBundleSteps(doc.x509Authorities, td, nowMs);
  const jwtAuthorities = [...doc.jwtAuthorities].map(([keyId, publicKey]) => ({ keyId, publicKey }));
  return { taken: { bundle, jwtAuthorities, sequence: doc.sequence, refreshHintSeconds: doc.refreshHintSeconds, ignored: doc.ignored }, rsaKeys };
}

/** The authorities of a bundle held in PEM (a bootstrap file): the JWK import's key rules, which they did not pass. */
export async function judgeAuthorities(authorities: readonly X509Certificate[], weakness: KeyWeakness): Promise<void> {
  const rsaKeys = new DistinctRsaKeys();
  for (const cert of authorities) {
    const where = `x509-svid authority ${cert.subject}`;
    checkBundleKey(cert.publicKey, where);
    rsaKeys.add(cert.publicKey, where);
  }
  await judgeBundleKeys(rsaKeys.list(), weakness);
}
