// Turns planned additions into RFC 6902 JSON Patch ops (for the webhook) or a mutated copy (for the CLI).
import { type Container, type Json, type Pod, cloneJson } from './k8s-types.js';
import type { AppContainerAdditions, PodAdditions } from './plan-injection.js';

export type JsonPatchOp =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: Json }
  | { readonly op: 'remove'; readonly path: string };

/** RFC 6901: "~" becomes "~0" and "/" becomes "~1" (in that order). */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

// Every value in the additions is built fresh by planInjection for this one patch (from the request it takes only
// strings and integers), so the ops use them as they are: no deep copy of anything the request sent.
const json = (v: unknown) => v as Json;

/**
 * Appends `items` to the list at `path` (created when absent): one op per item, or one op setting the whole list
 * (the pod's own items, then these), whichever is shorter. One op per item turned a 7 KiB review of containers
 * with `env: []` into a 317 KiB patch (audit 5, N2); the whole list is never longer than the pod's own list plus
 * these. The patch applies to the pod exactly as sent, so setting the whole list keeps every item it had.
 */
function appendOps(ops: JsonPatchOp[], path: string, existing: readonly unknown[] | undefined, items: readonly Json[]): void {
  if (items.length === 0) return;
  if (!existing) {
    ops.push({ op: 'add', path, value: json(items) });
    return;
  }
  const each: JsonPatchOp[] = items.map((v) => ({ op: 'add', path: `${path}/-`, value: v }));
  let own: string | undefined;
  try {
    own = JSON.stringify(existing);
  } catch {
    // Too deep to write out again (the request's own nesting): append item by item, never copying the pod's.
  }
  if (own !== undefined) {
    const itemsLength = JSON.stringify(items).length;
    const eachLength = each.reduce((n, op) => n + op.path.length + 32, 0) + itemsLength;
    const wholeLength = path.length + 32 + own.length + itemsLength;
    if (wholeLength < eachLength) {
      ops.push({ op: 'replace', path, value: json([...existing, ...items]) });
      return;
    }
  }
  ops.push(...each);
}

/**
 * Ops against the pod exactly as the API server sent it. Each list is created when absent and extended otherwise,
 * so the patch never drops what other webhooks or the user put there.
 */
export function jsonPatchFor(pod: Pod, add: PodAdditions): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const newAnnotations = Object.entries(add.annotations);
  if (newAnnotations.length > 0) {
    if (pod.metadata === undefined) ops.push({ op: 'add', path: '/metadata', value: {} });
    const annotations = pod.metadata?.annotations;
    if (annotations === undefined || annotations === null) {
      ops.push({ op: 'add', path: '/metadata/annotations', value: json(add.annotations) });
    } else {
      // "add" on an existing member replaces it (RFC 6902 4.1): stale values written by hand are overwritten.
      for (const [k, v] of newAnnotations) ops.push({ op: 'add', path: `/metadata/annotations/${escapePointerToken(k)}`, value: v });
    }
  }
  // The sidecar goes first so that it starts before every other init container, too; the user's init containers
  // then sit one place further in the ops that follow.
  if (add.sidecar) {
    if (!pod.spec.initContainers) ops.push({ op: 'add', path: '/spec/initContainers', value: [json(add.sidecar)] });
    else ops.push({ op: 'add', path: '/spec/initContainers/0', value: json(add.sidecar) });
  }
  if (add.volumes.length > 0) {
    if (!pod.spec.volumes) ops.push({ op: 'add', path: '/spec/volumes', value: json(add.volumes) });
    else for (const v of add.volumes) ops.push({ op: 'add', path: '/spec/volumes/-', value: json(v) });
  }
  const shift = add.sidecar ? 1 : 0;
  for (const a of add.appContainers) {
    const c = containerOf(pod, a);
    const base = a.list === 'containers' ? `/spec/containers/${a.index}` : `/spec/initContainers/${a.index + shift}`;
    appendOps(ops, `${base}/volumeMounts`, c.volumeMounts, [json(a.mount)]);
    if (a.env) appendOps(ops, `${base}/env`, c.env, a.env.map(json));
    for (const [field, probe] of Object.entries(a.probes ?? {})) ops.push({ op: 'replace', path: `${base}/${field}`, value: json(probe) });
  }
  return ops;
}

function containerOf(pod: Pod, a: AppContainerAdditions): Container {
  return (a.list === 'containers' ? pod.spec.containers : pod.spec.initContainers!)[a.index]!;
}

/** The injected pod built directly (not through the patch), so the two paths can check each other in tests. */
export function applyAdditions(pod: Pod, add: PodAdditions): Pod {
  const out = cloneJson(pod);
  if (Object.keys(add.annotations).length > 0) {
    out.metadata = { ...(out.metadata ?? {}) };
    out.metadata.annotations = { ...(out.metadata.annotations ?? {}), ...add.annotations };
  }
  // Containers first, by their index in the pod as sent; the sidecar is inserted after.
  for (const a of add.appContainers) {
    const c = containerOf(out, a);
    c.volumeMounts = [...(c.volumeMounts ?? []), cloneJson(a.mount)];
    if (a.env) c.env = [...(c.env ?? []), ...cloneJson(a.env)];
    for (const [field, probe] of Object.entries(a.probes ?? {})) c[field] = cloneJson(probe);
  }
  if (add.sidecar) out.spec.initContainers = [cloneJson(add.sidecar), ...(out.spec.initContainers ?? [])];
  if (add.volumes.length > 0) out.spec.volumes = [...(out.spec.volumes ?? []), ...cloneJson(add.volumes)];
  return out;
}
