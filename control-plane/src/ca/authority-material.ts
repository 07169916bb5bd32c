// Turns a CA's stored PEM (a root or intermediate certificate and its key; an offline root's certificate alone) into
// checked material, and an authority's records into its loaded material: the same checks whether the PEM came from
// files or from the shared database.
import { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { type KeyPair, keyMatchesPublicKey, keyPairFromPem } from '../../../common/pki/keys.js';
import { readCertFields } from '../../../common/spiffe/x509-fields.js';
import type { AuthorityRecord, AuthorityRoot, CertWithKey, LoadedAuthority, PendingIntermediateRecord } from './authority.js';

export function corrupt(message: string, cause?: unknown, file?: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', message, file ? { file } : {}, cause === undefined ? undefined : { cause });
}

/** Where a pair's PEM came from, for messages: a path or "<database> ca_material/<name>". */
export interface PairSource {
  readonly cert: string;
  readonly key: string;
}

/** A CA certificate (basicConstraints cA), naming `from` when it is not one. */
export function caCertFromPem(certPem: Buffer | string, from: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw corrupt(`${from} is not a certificate: ${(e as Error).message}`, e, from);
  }
  if (!cert.ca) {
    // Node reads CA:TRUE without keyCertSign as no CA at all: say which of the two is missing (audit 62h F4).
    const f = (() => {
      try {
        return readCertFields(cert.raw);
      } catch {
        return null;
      }
    })();
    const why = f?.isCa && f.keyUsage && !f.keyUsage.keyCertSign ? 'lacks keyUsage keyCertSign' : 'is not a CA certificate (basicConstraints cA is not true)';
    throw corrupt(`${from} ${why}`, undefined, from);
  }
  return cert;
}

/** A private key, naming `from` when it does not parse. */
export function keyFromPem(keyPem: Buffer | string, from: string): KeyPair {
  try {
    return keyPairFromPem(keyPem);
  } catch (e) {
    throw corrupt(`${from} is not a private key: ${(e as Error).message}`, e, from);
  }
}

/** A CA certificate and the private key that matches it. `checkKey` vets the key's container first (file modes). */
export function pairFromPem(certPem: Buffer | string, keyPem: Buffer | string, from: PairSource): CertWithKey {
  const cert = caCertFromPem(certPem, from.cert);
  const key = keyFromPem(keyPem, from.key);
  if (!keyMatchesPublicKey(key.privateKey, cert.publicKey)) throw corrupt(`${from.key} does not match ${from.cert}`, undefined, from.key);
  return { cert, key };
}

/** How a store reads what a state names: a certificate with its key, or a certificate alone (an offline root). */
export interface MaterialReader {
  pair(certName: string, keyName: string): CertWithKey;
  cert(certName: string): X509Certificate;
}

/**
 * Loads one authority: its root (with its key, or alone when the root is offline) and every intermediate, each
 * intermediate checked to be issued by that root. `where` names the state the record came from.
 */
export function loadAuthority(a: AuthorityRecord, where: string, read: MaterialReader, certLabel: (name: string) => string): LoadedAuthority {
  if (a === null || typeof a !== 'object' || !Array.isArray(a.intermediates)) throw corrupt(`${where}: an authority entry is malformed`, undefined, where);
  const root: AuthorityRoot = a.rootKeyFile === undefined ? { cert: read.cert(a.rootCertFile), key: null } : read.pair(a.rootCertFile, a.rootKeyFile);
  if (root.key === null && !(root.cert.checkIssued(root.cert) && root.cert.verify(root.cert.publicKey))) throw corrupt(`${certLabel(a.rootCertFile)} is not a self-signed root`, undefined, certLabel(a.rootCertFile));
  const intermediates = a.intermediates.map((i) => read.pair(i.certFile, i.keyFile));
  if (intermediates.length === 0) throw corrupt(`${where}: authority ${a.id} has no intermediate`, undefined, where);
  for (const [n, i] of intermediates.entries()) {
    const label = certLabel(a.intermediates[n]!.certFile);
    if (!i.cert.checkIssued(root.cert) || !i.cert.verify(root.cert.publicKey)) throw corrupt(`${label} is not signed by the root of authority ${a.id} (${certLabel(a.rootCertFile)})`, undefined, label);
  }
  return { record: a, root, intermediates };
}

/** The names a state refers to: every root's and intermediate's certificate and key, and a pending request's key. */
export function referencedNames(authorities: readonly AuthorityRecord[], pending?: PendingIntermediateRecord): Set<string> {
  const out = new Set<string>();
  for (const a of authorities) {
    out.add(a.rootCertFile);
    if (a.rootKeyFile !== undefined) out.add(a.rootKeyFile);
    for (const i of a.intermediates) out.add(i.certFile).add(i.keyFile);
  }
  if (pending) out.add(pending.keyFile);
  return out;
}
