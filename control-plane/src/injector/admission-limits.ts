// Bounds on what one admission reads and writes. A real pod has a handful of containers and a few KiB of
// annotations; without bounds a <1 MiB review of tens of thousands of tiny containers made a 17 MiB patch and a
// 300+ MiB heap (audit 4, B1). Above a bound the pod is denied with TESSERA_ERR_INJECT_TOO_LARGE naming it.
import { TesseraError } from '../../../common/errors.js';

/** containers + initContainers of one pod. Kubernetes sets no number; a few is usual, dozens is rare. */
export const MAX_CONTAINERS = 256;
/** Kubernetes' limit on a pod's annotations (sum of key and value bytes, TotalAnnotationSizeLimitB). */
export const MAX_ANNOTATION_BYTES = 256 * 1024;
/**
 * The JSON Patch the webhook returns, before base64, beyond the trust bundle it carries (the operator's, in every
 * patch): sidecar, volumes, config annotation and per-container ops. A real pod's is a few KiB (one container with
 * three probes and the forward proxy: about 6 KiB; 20 such containers: about 30 KiB). It was 1 MiB, and reviews of a
 * few KiB were answered with 300-650 KiB (audit 5, N2): the answers, not the requests, took the injector past its
 * memory limit.
 */
export const MAX_PATCH_BYTES = 256 * 1024;

export function tooLarge(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_TOO_LARGE', message);
}

/** Bytes Kubernetes counts for a pod's annotations: every key and value, in UTF-8. */
export function annotationBytes(annotations: Readonly<Record<string, string>>): number {
  let n = 0;
  for (const [k, v] of Object.entries(annotations)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/** Throws TESSERA_ERR_INJECT_TOO_LARGE when the annotations the pod would carry after injection exceed the limit. */
export function checkAnnotationSize(existing: Readonly<Record<string, string>>, added: Readonly<Record<string, string>>): void {
  const total = annotationBytes({ ...existing, ...added });
  if (total <= MAX_ANNOTATION_BYTES) return;
  const ours = annotationBytes(added);
  throw tooLarge(
    `with the injector's annotations (${ours} bytes, mostly tessera.dev/proxy-config and tessera.dev/bootstrap-bundle) the pod's annotations would be ${total} bytes, over the Kubernetes limit of ${MAX_ANNOTATION_BYTES}; remove some of the pod's own`,
  );
}
