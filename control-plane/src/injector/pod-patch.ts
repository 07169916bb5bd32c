// Turns planned additions into RFC 6902 JSON Patch ops (for the webhook) or a mutated copy (for the CLI).
import { type Json, type Pod, cloneJson } from './k8s-types.js';
import type { PodAdditions } from './plan-injection.js';

export type JsonPatchOp =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: Json }
  | { readonly op: 'remove'; readonly path: string };

/** RFC 6901: "~" becomes "~0" and "/" becomes "~1" (in that order). */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

const json = (v: unknown) => cloneJson(v) as Json;

/**
 * Ops against the pod exactly as the API server sent it. Each list is created when absent and appended to
 * otherwise, so the patch never replaces what other webhooks or the user put there.
 */
export function jsonPatchFor(pod: Pod, add: PodAdditions): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  if (pod.metadata === undefined) ops.push({ op: 'add', path: '/metadata', value: {} });
  const annotations = pod.metadata?.annotations;
  if (annotations === undefined || annotations === null) {
    ops.push({ op: 'add', path: '/metadata/annotations', value: json(add.annotations) });
  } else {
    // "add" on an existing member replaces it (RFC 6902 4.1): stale values written by hand are overwritten.
    for (const [k, v] of Object.entries(add.annotations)) ops.push({ op: 'add', path: `/metadata/annotations/${escapePointerToken(k)}`, value: v });
  }
  // The sidecar goes first so that it starts before every other init container, too.
  if (!pod.spec.initContainers) ops.push({ op: 'add', path: '/spec/initContainers', value: [json(add.sidecar)] });
  else ops.push({ op: 'add', path: '/spec/initContainers/0', value: json(add.sidecar) });
  if (!pod.spec.volumes) ops.push({ op: 'add', path: '/spec/volumes', value: json(add.volumes) });
  else for (const v of add.volumes) ops.push({ op: 'add', path: '/spec/volumes/-', value: json(v) });
  for (const a of add.appContainers) {
    const c = pod.spec.containers[a.index]!;
    const base = `/spec/containers/${a.index}`;
    if (!c.volumeMounts) ops.push({ op: 'add', path: `${base}/volumeMounts`, value: [json(a.mount)] });
    else ops.push({ op: 'add', path: `${base}/volumeMounts/-`, value: json(a.mount) });
    if (a.env) {
      if (!c.env) ops.push({ op: 'add', path: `${base}/env`, value: json(a.env) });
      else for (const e of a.env) ops.push({ op: 'add', path: `${base}/env/-`, value: json(e) });
    }
    for (const [field, probe] of Object.entries(a.probes ?? {})) ops.push({ op: 'replace', path: `${base}/${field}`, value: json(probe) });
  }
  return ops;
}

/** The injected pod built directly (not through the patch), so the two paths can check each other in tests. */
export function applyAdditions(pod: Pod, add: PodAdditions): Pod {
  const out = cloneJson(pod);
  out.metadata = { ...(out.metadata ?? {}) };
  out.metadata.annotations = { ...(out.metadata.annotations ?? {}), ...add.annotations };
  out.spec.initContainers = [cloneJson(add.sidecar), ...(out.spec.initContainers ?? [])];
  out.spec.volumes = [...(out.spec.volumes ?? []), ...cloneJson(add.volumes)];
  for (const a of add.appContainers) {
    const c = out.spec.containers[a.index]!;
    c.volumeMounts = [...(c.volumeMounts ?? []), cloneJson(a.mount)];
    if (a.env) c.env = [...(c.env ?? []), ...cloneJson(a.env)];
    for (const [field, probe] of Object.entries(a.probes ?? {})) c[field] = cloneJson(probe);
  }
  return out;
}
