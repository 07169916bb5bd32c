// Turns a CA's stored PEM (a root or intermediate certificate and its key) into a checked pair, and an authority's
// records into its loaded material: the same checks whether the PEM came from files or from the shared database.
import { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { keyMatchesPublicKey, keyPairFromPem } from '../../../common/pki/keys.js';
import type { AuthorityRecord, CertWithKey, LoadedAuthority } from './authority.js';

export function corrupt(message: string, cause?: unknown, file?: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', message, file ? { file } : {}, cause === undefined ? undefined : { cause });
}

/** Where a pair's PEM came from, for messages: a path or "<database> ca_material/<name>". */
export interface PairSource {
  readonly cert: string;
  readonly key: string;
}

/** A CA certificate and the private key that matches it. `checkKey` vets the key's container first (file modes). */
export function pairFromPem(certPem: Buffer | string, keyPem: Buffer | string, from: PairSource): CertWithKey {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw corrupt(`${from.cert} is not a certificate: ${(e as Error).message}`, e, from.cert);
  }
  if (!cert.ca) throw corrupt(`${from.cert} is not a CA certificate (basicConstraints cA is not true)`, undefined, from.cert);
  let key: ReturnType<typeof keyPairFromPem>;
  try {
    key = keyPairFromPem(keyPem);
  } catch (e) {
    throw corrupt(`${from.key} is not a private key: ${(e as Error).message}`, e, from.key);
  }
  if (!keyMatchesPublicKey(key.privateKey, cert.publicKey)) throw corrupt(`${from.key} does not match ${from.cert}`, undefined, from.key);
  return { cert, key };
}

/**
 * Loads one authority: its root and every intermediate (`pair` reads a cert/key name pair), each intermediate
 * checked to be issued by that root. `where` names the state the record came from.
 */
export function loadAuthority(a: AuthorityRecord, where: string, pair: (certName: string, keyName: string) => CertWithKey, certLabel: (name: string) => string): LoadedAuthority {
  if (a === null || typeof a !== 'object' || !Array.isArray(a.intermediates)) throw corrupt(`${where}: an authority entry is malformed`, undefined, where);
  const root = pair(a.rootCertFile, a.rootKeyFile);
  const intermediates = a.intermediates.map((i) => pair(i.certFile, i.keyFile));
  if (intermediates.length === 0) throw corrupt(`${where}: authority ${a.id} has no intermediate`, undefined, where);
  for (const [n, i] of intermediates.entries()) {
    const label = certLabel(a.intermediates[n]!.certFile);
    if (!i.cert.checkIssued(root.cert) || !i.cert.verify(root.cert.publicKey)) throw corrupt(`${label} is not signed by the root of authority ${a.id} (${certLabel(a.rootCertFile)})`, undefined, label);
  }
  return { record: a, root, intermediates };
}

/** The names a state refers to: every root's and intermediate's certificate and key. */
export function referencedNames(authorities: readonly AuthorityRecord[]): Set<string> {
  const out = new Set<string>();
  for (const a of authorities) {
    out.add(a.rootCertFile).add(a.rootKeyFile);
    for (const i of a.intermediates) out.add(i.certFile).add(i.keyFile);
  }
  return out;
}
