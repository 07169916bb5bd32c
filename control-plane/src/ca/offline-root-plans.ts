// The offline-root steps as plans the CA manager commits: asking for an intermediate (a key made here, kept as the
// pending request, 0600 beside the CA's other keys, and the CSR for it) and installing the certificate the root's
// holder signed for it — checked first (offline-intermediate.ts), then added to the authority of that root, or made
// a new authority of its own: the first and active one when there is none, else prepared (then `ca activate`).
import { randomBytes } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { type KeyPair, generateKeyPair, privateKeyPem } from '../../../common/pki/keys.js';
import { encodePem } from '../../../common/pki/pem.js';
import { fingerprintOf } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { type AuthorityRecord, type AuthorityState, type CertWithKey, type LoadedAuthority, type PendingIntermediateRecord, newAuthorityId, offlineAuthorityId } from './authority.js';
import { type CaEvent, type Plan, intermediateMaterial, intermediateRecord, unchanged } from './ca-plan.js';
import { checkSignedIntermediate, intermediateCsrPem } from './offline-intermediate.js';

/** What the offline steps see of the CA: its authorities and the pending request. */
export interface OfflineView {
  readonly trustDomain: TrustDomain;
  readonly authorities: readonly LoadedAuthority[];
  readonly pending: { readonly record: PendingIntermediateRecord; readonly key: KeyPair } | null;
}

export interface IntermediateRequest {
  readonly csrPem: string;
  readonly requestedAtMs: number;
  /** False when the pending request's key was reused (its CSR asked for again). */
  readonly newKey: boolean;
}

export interface InstallRequest {
  readonly certPem: string;
  readonly rootPem: string;
  /** Make a new (prepared) authority sign at once, retiring the active one. */
  readonly activate?: boolean;
}

export interface InstalledIntermediate {
  readonly authority: string;
  readonly serial: string;
  readonly notAfterMs: number;
  /** True when the root was new here: a new authority was made for it. */
  readonly newAuthority: boolean;
  readonly state: AuthorityState;
}

export async function requestPlan(v: OfflineView, now: number, fresh: boolean): Promise<Plan<IntermediateRequest>> {
  if (v.pending && !fresh) {
    const { record, key } = v.pending;
    return unchanged({ csrPem: await intermediateCsrPem(key, v.trustDomain, record.createdAtMs), requestedAtMs: record.createdAtMs, newKey: false });
  }
  const key = generateKeyPair('ec-p256');
  const record: PendingIntermediateRecord = { keyFile: `pending-int-${randomBytes(6).toString('hex')}.key`, createdAtMs: now };
  return {
    records: v.authorities.map((a) => a.record),
    material: [{ name: record.keyFile, text: privateKeyPem(key), secret: true }],
    pending: { record, key },
    // The request has no authority yet: the root that signs it decides which one it joins.
    events: [{ event: 'ca.intermediate_requested', detail: { replacedPending: v.pending !== null } }],
    result: { csrPem: await intermediateCsrPem(key, v.trustDomain, now), requestedAtMs: now, newKey: true },
  };
}

function rootRefused(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CA_ROOT_INVALID', message, { reason: 'root_invalid' });
}

export async function installPlan(v: OfflineView, req: InstallRequest, now: number): Promise<Plan<InstalledIntermediate>> {
  const checked = checkSignedIntermediate({ intermediatePem: req.certPem, rootPem: req.rootPem, key: v.pending?.key ?? null, trustDomain: v.trustDomain, nowMs: now });
  const inter: CertWithKey = { cert: checked.intermediate, key: v.pending!.key };
  const rootFingerprint = fingerprintOf(checked.root);
  const existing = v.authorities.find((a) => fingerprintOf(a.root.cert) === rootFingerprint);
  const records = v.authorities.map((a) => a.record);
  if (existing) {
    const a = existing.record;
    if (existing.root.key !== null) throw rootRefused(`the root is authority ${a.id}'s, whose key is held here: its intermediates are made here, not installed`);
    if (a.state === 'retired') throw rootRefused(`the root is authority ${a.id}'s, which is retired: install intermediates of the active or prepared authority`);
    const ir = intermediateRecord(a.id, inter.cert);
    return {
      records: records.map((r) => (r.id === a.id ? { ...r, intermediates: [...r.intermediates, ir] } : r)),
      material: intermediateMaterial(ir, inter),
      newIntermediates: [[a.id, inter]],
      pending: null,
      events: [{ event: 'ca.intermediate_installed', authority: a.id, detail: { serial: ir.serial, notAfterMs: ir.notAfterMs, previous: a.intermediates.at(-1)?.serial, root: 'offline' } }],
      result: { authority: a.id, serial: ir.serial, notAfterMs: ir.notAfterMs, newAuthority: false, state: a.state },
    };
  }
  const first = !records.some((r) => r.state === 'active');
  if (!first && records.some((r) => r.state === 'prepared')) throw new TesseraError('TESSERA_ERR_CA_ALREADY_PREPARED', 'an authority is already prepared; activate or retire it before installing an intermediate of another root');
  let id = offlineAuthorityId(checked.root);
  if (records.some((r) => r.id === id)) id = newAuthorityId();
  const ir = intermediateRecord(id, inter.cert);
  const state: AuthorityState = first ? 'active' : 'prepared';
  const record: AuthorityRecord = {
    id,
    state,
    createdAtMs: now,
    ...(first ? { activatedAtMs: now } : {}),
    rootCertFile: `${id}-root.crt`,
    rootNotAfterMs: checked.root.validToDate.getTime(),
    intermediates: [ir],
  };
  const events: CaEvent[] = [
    { event: first ? 'ca.created' : 'ca.prepared', authority: id, detail: { root: 'offline', rootFingerprint } },
    { event: 'ca.intermediate_installed', authority: id, detail: { serial: ir.serial, notAfterMs: ir.notAfterMs, root: 'offline' } },
  ];
  return {
    records: [...records, record],
    material: [{ name: record.rootCertFile, text: encodePem('CERTIFICATE', checked.root.raw), secret: false }, ...intermediateMaterial(ir, inter)],
    newAuthorities: [{ record, root: { cert: checked.root, key: null }, intermediates: [inter] }],
    pending: null,
    events,
    result: { authority: id, serial: ir.serial, notAfterMs: ir.notAfterMs, newAuthority: true, state },
  };
}
