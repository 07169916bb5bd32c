// A SignSvid answer checked before it is installed (validateSignedSvid) and the bundles carried as DER on the wire
// (bundleFromDer, also Config/Watch's): the shape of what the control plane returned, not yet a verified chain.
import { type X509Certificate, X509Certificate as X509 } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { type KeyPair, keyMatchesPublicKey } from '../../../common/pki/keys.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { leafSpiffeId } from '../../../common/spiffe/x509-svid.js';
import { type AnswerTiming, clockOffsetMs } from './clock-offset.js';
import type { IssuedSvid, SignedSvidRaw } from './control-plane-svid-source.js';

/**
 * Checks a SignSvid answer before it is installed: parses, the key matches ours, the leaf carries a workload SPIFFE
 * ID and the answer a bundle for its trust domain. The chain itself is verified once, by the identity store on
 * install (identity-snapshot.ts), under the bundles the proxy will use: not here as well.
 */
export function validateSignedSvid(
  raw: SignedSvidRaw,
  key: KeyPair,
  timing: AnswerTiming,
  expect: { trustDomain?: TrustDomain | undefined; sameIdAs?: SpiffeId | undefined } = {},
): IssuedSvid {
  const bad = (msg: string) => new TesseraError('TESSERA_ERR_IDENTITY_BAD_RESPONSE', msg);
  if (raw.chainDer.length === 0) throw bad('empty SVID chain');
  let chain: X509Certificate[];
  try {
    chain = raw.chainDer.map((d) => new X509(Buffer.from(d)));
  } catch (e) {
    throw bad(`unparsable certificate in SVID chain: ${(e as Error).message}`);
  }
  const leaf = chain[0]!;
  if (!keyMatchesPublicKey(key.privateKey, leaf.publicKey)) throw bad('the SVID does not carry the public key of the CSR');
  const verified = leafSpiffeId(leaf);
  if (!verified.ok) throw bad(`the SVID is not a workload X.509-SVID: ${verified.message}`);
  const td = verified.id.trustDomain;
  const own = raw.bundles.find((b) => b.trustDomain === td.name);
  if (!own) throw bad(`no bundle for trust domain "${td}" in the answer`);
  let bundle: TrustBundle;
  try {
    bundle = bundleFromDer(td.name, own.authoritiesDer);
  } catch (e) {
    throw bad(`bundle in the answer is invalid: ${(e as Error).message}`);
  }
  if (expect.trustDomain && !verified.id.trustDomain.equals(expect.trustDomain)) {
    throw bad(`the SVID is in trust domain "${verified.id.trustDomain}", expected "${expect.trustDomain}"`);
  }
  if (expect.sameIdAs && !expect.sameIdAs.equals(verified.id)) throw bad(`renewal changed the SPIFFE ID from ${expect.sameIdAs} to ${verified.id}`);
  const notBeforeMs = leaf.validFromDate.getTime();
  const notAfterMs = leaf.validToDate.getTime();
  return {
    id: verified.id,
    chain,
    key,
    bundle,
    notBeforeMs,
    notAfterMs,
    issuedAtMs: timing.receivedAtMs,
    clockOffsetMs: clockOffsetMs(timing, notBeforeMs, notAfterMs),
    serial: leaf.serialNumber.toLowerCase(),
  };
}

/** A bundle from separate DER certificates (one per wire element; DER is not concatenated here). */
export function bundleFromDer(trustDomain: string, ders: readonly Uint8Array[]): TrustBundle {
  let certs: X509Certificate[];
  try {
    certs = ders.map((d) => new X509(Buffer.from(d)));
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_PEM_MALFORMED', `bundle for "${trustDomain}": ${(e as Error).message}`);
  }
  return new TrustBundle(TrustDomain.parse(trustDomain), certs);
}
