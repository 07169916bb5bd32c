// A CA authority: a self-signed root and the intermediate(s) it certified, with its lifecycle state. Creating
// one (ECDSA P-256 keys, SPIFFE trust-domain URI SAN on both CA certificates) and the records persisted for it.
// An authority whose root is offline has the root certificate only: its key is held elsewhere (another machine,
// an upstream CA) and its intermediates are signed there, never minted here (docs/offline-root.md).
import { randomBytes, type X509Certificate } from 'node:crypto';
import { issueCertificate } from '../../../common/pki/cert-builder.js';
import { generateKeyPair, type KeyPair } from '../../../common/pki/keys.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';

export type AuthorityState = 'prepared' | 'active' | 'retired';

export interface IntermediateRecord {
  /** Lower-case hex serial. */
  readonly serial: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly notAfterMs: number;
}

/** What ca-state.json stores per authority (file names are relative to the CA dir). */
export interface AuthorityRecord {
  readonly id: string;
  readonly state: AuthorityState;
  readonly createdAtMs: number;
  readonly activatedAtMs?: number;
  readonly retiredAtMs?: number;
  readonly rootCertFile: string;
  /** Absent: the root is offline (its key never reaches this control plane). */
  readonly rootKeyFile?: string;
  readonly rootNotAfterMs: number;
  /** Oldest first; the last one signs. Expired ones are pruned. */
  readonly intermediates: readonly IntermediateRecord[];
}

/** The key of an intermediate asked for by `tessera ca intermediate-csr`, waiting for its certificate. */
export interface PendingIntermediateRecord {
  readonly keyFile: string;
  readonly createdAtMs: number;
}

export interface CaStateFile {
  readonly version: 1;
  readonly trustDomain: string;
  /** Empty only while an offline-root CA waits for its first intermediate. */
  readonly authorities: readonly AuthorityRecord[];
  readonly pendingIntermediate?: PendingIntermediateRecord;
  /** Removed authorities, newest last (history for `tessera ca status`; capped). */
  readonly removed: readonly { readonly id: string; readonly removedAtMs: number }[];
}

export interface CertWithKey {
  readonly cert: X509Certificate;
  readonly key: KeyPair;
}

/** A root certificate and its key; the key is null when the root is offline. */
export interface AuthorityRoot {
  readonly cert: X509Certificate;
  readonly key: KeyPair | null;
}

/** An authority with its material loaded. */
export interface LoadedAuthority {
  readonly record: AuthorityRecord;
  readonly root: AuthorityRoot;
  /** Same order as record.intermediates. */
  readonly intermediates: readonly CertWithKey[];
}

export interface CaLifetimes {
  readonly rootTtlMs: number;
  readonly intermediateTtlMs: number;
  /**
   * svid.maxTtl: a retired authority is removed by itself no sooner than this after its retirement, whatever the
   * inventory says. An inventory that knows no SVID of it (a control plane run over a writable copy of a Secret to
   * prepare and activate, as docs/kubernetes.md has it) removed the old root 2 s after the activation, and the Secret
   * built from that copy refused every sidecar still holding an SVID of it (audit 62h F1). Absent: no such floor.
   */
  readonly svidMaxTtlMs?: number;
}

/** CA certificates are valid from this long before they are made (clock skew between hosts). */
export const CA_BACKDATE_MS = 60_000;

export function newAuthorityId(): string {
  return randomBytes(4).toString('hex');
}

/** An offline root's authority id: from its fingerprint, so every replica reading the same root names it alike. */
export function offlineAuthorityId(root: X509Certificate): string {
  return root.fingerprint256.replaceAll(':', '').slice(0, 8).toLowerCase();
}

export async function createRoot(td: TrustDomain, id: string, nowMs: number, ttlMs: number): Promise<CertWithKey> {
  const key = generateKeyPair('ec-p256');
  const cert = await issueCertificate({
    // A distinct subject per authority: verifiers pick the root by name, and rotation keeps two at once.
    subject: `CN=Tessera root ${td.name} ${id}, O=Tessera`,
    publicKey: key.publicKey,
    signer: key,
    notBefore: new Date(nowMs - CA_BACKDATE_MS),
    notAfter: new Date(nowMs + ttlMs),
    basicConstraints: { ca: true, pathLength: 1 },
    keyUsage: ['keyCertSign', 'cRLSign'],
    uriSans: [td.idString()],
  });
  return { cert, key };
}

export async function createIntermediate(td: TrustDomain, id: string, root: CertWithKey, nowMs: number, ttlMs: number): Promise<CertWithKey> {
  const key = generateKeyPair('ec-p256');
  const rootNotAfter = root.cert.validToDate.getTime();
  const cert = await issueCertificate({
    subject: `CN=Tessera intermediate ${td.name} ${id} ${nowMs}, O=Tessera`,
    publicKey: key.publicKey,
    issuer: root.cert,
    signer: root.key,
    notBefore: new Date(nowMs - CA_BACKDATE_MS),
    // Never outlives its root.
    notAfter: new Date(Math.min(nowMs + ttlMs, rootNotAfter)),
    basicConstraints: { ca: true, pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
    uriSans: [td.idString()],
  });
  return { cert, key };
}

export function serialOf(cert: X509Certificate): string {
  return cert.serialNumber.toLowerCase();
}
