// The proxy's identity as one immutable value: its SVID chain and key, and the trust bundles peers are checked
// against. Built and validated whole by an identity source; listeners only ever read a complete snapshot.
import type { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { encodePem } from '../../../common/pki/pem.js';
import { type KeyPair, keyMatchesPublicKey, privateKeyPem } from '../../../common/pki/keys.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';

export interface IdentitySnapshot {
  /** Increases by one with every accepted update; TLS contexts are cached per generation. */
  readonly generation: number;
  readonly id: SpiffeId;
  /** Leaf first. */
  readonly chain: readonly X509Certificate[];
  readonly key: KeyPair;
  readonly bundles: TrustBundleSet;
  readonly serial: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** When this snapshot was installed (wall clock). */
  readonly installedAtMs: number;
  /** Where it came from, for /certs: 'files' | 'control-plane'. */
  readonly source: string;
  /** PEM forms for node:tls, computed once per snapshot. */
  readonly chainPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

export interface IdentityInput {
  readonly chain: readonly X509Certificate[];
  readonly key: KeyPair;
  readonly bundles: TrustBundleSet;
  readonly source: string;
}

/**
 * Validates an update whole — key matches the leaf, the chain is a valid SVID under the bundle of its own trust
 * domain at `nowMs` — and builds the snapshot. Throws TesseraError; nothing is half-applied.
 */
export function buildIdentitySnapshot(input: IdentityInput, generation: number, nowMs: number): IdentitySnapshot {
  const leaf = input.chain[0];
  if (!leaf) throw new TesseraError('TESSERA_ERR_IDENTITY_INVALID', 'the SVID chain is empty');
  if (!keyMatchesPublicKey(input.key.privateKey, leaf.publicKey)) {
    throw new TesseraError('TESSERA_ERR_IDENTITY_INVALID', 'the private key does not match the SVID leaf certificate');
  }
  const verified = verifyX509Svid(input.chain, input.bundles, { nowMs });
  if (!verified.ok) throw new TesseraError('TESSERA_ERR_IDENTITY_INVALID', `the SVID does not verify (${verified.reason}): ${verified.message}`);
  const authorities = input.bundles.bundles().flatMap((b) => b.authorities);
  return Object.freeze({
    generation,
    id: verified.id,
    chain: Object.freeze([...input.chain]),
    key: input.key,
    bundles: input.bundles,
    serial: leaf.serialNumber.toLowerCase(),
    notBeforeMs: Date.parse(leaf.validFrom),
    notAfterMs: Date.parse(leaf.validTo),
    installedAtMs: nowMs,
    source: input.source,
    chainPem: input.chain.map((c) => encodePem('CERTIFICATE', c.raw)).join(''),
    keyPem: privateKeyPem(input.key),
    caPem: authorities.map((c) => encodePem('CERTIFICATE', c.raw)).join(''),
  });
}
