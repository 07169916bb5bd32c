// admission.k8s.io/v1 AdmissionReview in and out: reads the request, answers allow / allow+patch / deny.
import { errorHttpStatus, isTesseraError, TesseraError } from '../../../common/errors.js';
import { shownText } from '../../../common/text/control-characters.js';
import { MAX_PATCH_BYTES, tooLarge } from './admission-limits.js';
import { isObject } from './k8s-types.js';
import { type InjectionContext, planInjection } from './plan-injection.js';
import { jsonPatchFor } from './pod-patch.js';
import { annotationWarnings } from './annotation-warnings.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  readonly uid: string;
  readonly operation: string;
  readonly resource: { readonly group: string; readonly version: string; readonly resource: string };
  readonly subResource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly object?: unknown;
  readonly dryRun?: boolean;
}

export interface AdmissionStatus {
  readonly code: number;
  readonly message: string;
  readonly reason?: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch document. */
  readonly patch?: string;
  readonly status?: AdmissionStatus;
  readonly warnings?: readonly string[];
}

export type Decision = 'injected' | 'skipped' | 'ignored' | 'denied';

export interface AdmissionOutcome {
  readonly response: AdmissionResponse;
  readonly decision: Decision;
  /** Short reason for logs and metrics: a skip reason, an error code, or "patched". */
  readonly reason: string;
  /** Only for unexpected failures: the error to log (never sent to the API server). */
  readonly internalError?: unknown;
}

/** The HTTP 400's text quotes what the caller sent (apiVersion, kind): bounded and escaped, as every denial is. */
function badReview(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_BAD_REVIEW', shownText(message));
}

const UID = /^[A-Za-z0-9-]{1,128}$/;

/**
 * Reads the envelope. Throws TESSERA_ERR_INJECT_BAD_REVIEW when there is nothing a response could refer to
 * (not JSON object, wrong apiVersion/kind, no uid): the server answers those with HTTP 400.
 */
export function readAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw badReview('the body is not a JSON object');
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== 'AdmissionReview') {
    throw badReview(`expected apiVersion ${ADMISSION_API_VERSION}, kind AdmissionReview; got ${String(body.apiVersion)}, ${String(body.kind)}`);
  }
  const r = body.request;
  if (!isObject(r)) throw badReview('the review has no request');
  if (typeof r.uid !== 'string' || !UID.test(r.uid)) throw badReview('request.uid is missing or malformed');
  const res = isObject(r.resource) ? r.resource : {};
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    uid: r.uid,
    operation: str(r.operation),
    resource: { group: str(res.group), version: str(res.version), resource: str(res.resource) },
    ...(typeof r.subResource === 'string' && r.subResource !== '' ? { subResource: r.subResource } : {}),
    ...(typeof r.namespace === 'string' ? { namespace: r.namespace } : {}),
    ...(typeof r.name === 'string' ? { name: r.name } : {}),
    ...(r.object !== undefined ? { object: r.object } : {}),
    ...(typeof r.dryRun === 'boolean' ? { dryRun: r.dryRun } : {}),
  };
}

/** Kubernetes' StatusReason for the HTTP statuses the catalogue gives injection errors. */
const STATUS_REASON: Readonly<Record<number, string>> = { 400: 'BadRequest', 409: 'Conflict', 413: 'RequestEntityTooLarge', 500: 'InternalError' };

/** A denial's own words and one bounded quote (shownText's 1,024) fit. */
const MAX_DENIAL_CHARS = 2_048;

/** kubectl prints `message`, which may quote the pod (a mountPath, a name): bounded and escaped on every path here. */
export function deny(uid: string, code: number, message: string, reason?: string): AdmissionResponse {
  return { uid, allowed: false, status: { code, message: shownText(message, MAX_DENIAL_CHARS), ...(reason ? { reason } : {}) } };
}

/** Pure, and never throws: every failure becomes a denial whose message names the fault (not internals). */
export function admitPod(request: AdmissionRequest, ctx: InjectionContext): AdmissionOutcome {
  const { uid } = request;
  const isPodCreate =
    request.resource.group === '' && request.resource.resource === 'pods' && request.subResource === undefined && request.operation === 'CREATE';
  // The webhook's rules only send pod CREATE; anything else is let through untouched rather than blocked.
  if (!isPodCreate) return { response: { uid, allowed: true }, decision: 'ignored', reason: 'not-a-pod-create' };
  // Coded like every other denial (the reason logged), though the API server never sends either (audit 38b, F4).
  if (request.object === undefined) {
    return { response: deny(uid, 400, 'tessera injector: the review carries no object', 'BadRequest'), decision: 'denied', reason: 'TESSERA_ERR_INJECT_BAD_REVIEW' };
  }
  // The API server always names the namespace of a pod CREATE: without one, the excluded namespaces cannot be told.
  if (!request.namespace) {
    return { response: deny(uid, 400, 'tessera injector: the review names no namespace', 'BadRequest'), decision: 'denied', reason: 'TESSERA_ERR_INJECT_BAD_REVIEW' };
  }
  try {
    const plan = planInjection({ pod: request.object, namespace: request.namespace }, ctx);
    const unknown = annotationWarnings(request.object);
    if (plan.action === 'skip') {
      const all = plan.warning ? [plan.warning, ...unknown] : unknown;
      return { response: { uid, allowed: true, ...(all.length > 0 ? { warnings: all } : {}) }, decision: 'skipped', reason: plan.reason };
    }
    const patchJson = JSON.stringify(jsonPatchFor(plan.pod, plan.additions));
    const size = Buffer.byteLength(patchJson);
    const bound = MAX_PATCH_BYTES + Buffer.byteLength(ctx.bundlePem);
    if (size > bound) throw tooLarge(`the patch for this pod would be ${size} bytes; the injector returns at most ${bound} (${MAX_PATCH_BYTES} and the trust bundle)`);
    const patch = Buffer.from(patchJson).toString('base64');
    return { response: { uid, allowed: true, patchType: 'JSONPatch', patch, ...(unknown.length > 0 ? { warnings: unknown } : {}) }, decision: 'injected', reason: 'patched' };
  } catch (e) {
    // An injection error names the pod's fault and may be shown; anything else stays in the injector's log.
    if (isTesseraError(e) && e.code.startsWith('TESSERA_ERR_INJECT_')) {
      const status = errorHttpStatus(e);
      return { response: deny(uid, status, `tessera: ${e.message}`, STATUS_REASON[status]), decision: 'denied', reason: e.code };
    }
    return {
      response: deny(uid, 500, 'tessera injector: internal error (see the injector log)', 'InternalError'),
      decision: 'denied',
      reason: 'internal',
      internalError: e,
    };
  }
}

export function reviewResponseBody(response: AdmissionResponse): string {
  return JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response });
}
