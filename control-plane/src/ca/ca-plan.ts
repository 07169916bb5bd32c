// What one CA mutation commits, as the CA manager's planners hand it over: the new authority records, the files to
// write before the state that names them, the material now in memory, and the events to audit. Also the names an
// intermediate's files get, shared by every planner (rotation, offline install).
import type { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { type KeyPair, privateKeyPem } from '../../../common/pki/keys.js';
import { encodePem } from '../../../common/pki/pem.js';
import { type AuthorityRecord, type CertWithKey, type IntermediateRecord, type LoadedAuthority, type PendingIntermediateRecord, serialOf } from './authority.js';
import type { MaterialFile } from './authority-store.js';

export interface CaEvent {
  readonly event: 'ca.created' | 'ca.prepared' | 'ca.activated' | 'ca.retired' | 'ca.removed' | 'ca.intermediate_rotated' | 'ca.intermediate_requested' | 'ca.intermediate_installed';
  /** Absent for a request not tied to an authority yet (ca.intermediate_requested). */
  readonly authority?: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface Plan<T> {
  /** null = nothing changed, nothing is written. */
  readonly records: AuthorityRecord[] | null;
  readonly material?: readonly MaterialFile[];
  readonly newAuthorities?: readonly LoadedAuthority[];
  readonly newIntermediates?: readonly (readonly [string, CertWithKey])[];
  readonly removed?: readonly string[];
  /** The pending intermediate request after this change: undefined = unchanged, null = none any more. */
  readonly pending?: { readonly record: PendingIntermediateRecord; readonly key: KeyPair } | null;
  /** Installed without a commit: a replica's own intermediates over a read-only store. */
  readonly inMemory?: boolean;
  /** Committed only while this replica leads (shared store). */
  readonly fenced?: boolean;
  readonly events: CaEvent[];
  readonly result: T;
}

/** Nothing to change: the answer alone. */
export function unchanged<T>(result: T): Plan<T> {
  return { records: null, events: [], result };
}

export function intermediateRecord(authorityId: string, cert: X509Certificate): IntermediateRecord {
  const serial = serialOf(cert);
  return { serial, certFile: `${authorityId}-int-${serial.slice(0, 16)}.crt`, keyFile: `${authorityId}-int-${serial.slice(0, 16)}.key`, notAfterMs: cert.validToDate.getTime() };
}

export function intermediateMaterial(r: IntermediateRecord, c: CertWithKey): MaterialFile[] {
  return [
    { name: r.keyFile, text: privateKeyPem(c.key), secret: true },
    { name: r.certFile, text: encodePem('CERTIFICATE', c.cert.raw), secret: false },
  ];
}

export function isConflict(e: unknown): boolean {
  return e instanceof TesseraError && e.code === 'TESSERA_ERR_CA_CONFLICT';
}
