// Offline injection over a YAML stream: Pods and the pod templates of workload kinds, inside lists too; other objects
// pass through.
import { TesseraError } from '../../../common/errors.js';
import { isObject, type Pod } from './k8s-types.js';
import { manifestYaml, readManifest } from './manifest-yaml.js';
import { type InjectionContext, planInjection } from './plan-injection.js';
import { applyAdditions } from './pod-patch.js';
import { annotationWarnings } from './annotation-warnings.js';

export interface ManifestReport {
  readonly document: number;
  readonly kind: string;
  readonly name: string;
  readonly result: 'injected' | 'passed-through' | `skipped: ${string}`;
  readonly warning?: string;
}

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATH: Readonly<Record<string, readonly string[]>> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

function getIn(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) cur = isObject(cur) ? cur[k] : undefined;
  return cur;
}

function setIn(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  cur[path[path.length - 1]!] = value;
}

/** Lists inside lists, at most: kubectl flattens any depth, a real stream has one or two. */
export const MAX_LIST_DEPTH = 32;

/**
 * One object: a Pod, a workload with a pod template, a list of those, or anything else. A list is what kubectl
 * flattens: `kind: List` (kubectl get -o yaml of several kinds) or a typed one (PodList, DeploymentList…) with items.
 * As kubectl does, an item of a typed list with neither kind nor apiVersion (the API server leaves them out) is of
 * the list's kind without "List"; it is written back as it came.
 */
function injectObject(obj: Record<string, unknown>, document: number, ctx: InjectionContext, reports: ManifestReport[], depth = 0, itemKind = ''): unknown {
  const kind = typeof obj.kind === 'string' ? obj.kind : obj.kind === undefined && obj.apiVersion === undefined ? itemKind : '';
  if (kind.endsWith('List') && Array.isArray(obj.items)) {
    if (depth >= MAX_LIST_DEPTH) throw new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', `document ${document}: lists nested more than ${MAX_LIST_DEPTH} deep`);
    const inner = kind.slice(0, -'List'.length);
    return { ...obj, items: obj.items.map((item) => (isObject(item) ? injectObject(item, document, ctx, reports, depth + 1, inner) : item)) };
  }
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '';
  // Own keys only: `kind: constructor` found Object's constructor there, and failed uncoded ("path is not iterable").
  const path = kind === 'Pod' ? [] : Object.hasOwn(TEMPLATE_PATH, kind) ? TEMPLATE_PATH[kind] : undefined;
  if (!path) {
    reports.push({ document, kind, name, result: 'passed-through' });
    return obj;
  }
  let plan: ReturnType<typeof planInjection>;
  try {
    plan = planInjection({ pod: path.length === 0 ? obj : getIn(obj, path) }, ctx);
  } catch (e) {
    if (e instanceof TesseraError) throw new TesseraError(e.code, `document ${document} (${kind} ${name}): ${e.message}`, { ...e.details, document });
    throw e;
  }
  if (plan.action === 'skip') {
    reports.push({ document, kind, name, result: `skipped: ${plan.reason}`, ...(plan.warning ? { warning: plan.warning } : {}) });
    return obj;
  }
  const unknown = annotationWarnings(path.length === 0 ? obj : getIn(obj, path));
  reports.push({ document, kind, name, result: 'injected', ...(unknown.length > 0 ? { warning: unknown.join('; ') } : {}) });
  const injected = applyAdditions(plan.pod, plan.additions);
  if (path.length === 0) return injected;
  const next = structuredClone(obj);
  setIn(next, path, injected as Pod);
  return next;
}

/** Injects every Pod and pod template in a multi-document YAML stream (text, or bytes that must be UTF-8); the result is YAML again. */
export function injectManifests(input: string | Uint8Array, ctx: InjectionContext): { output: string; reports: ManifestReport[] } {
  const out: string[] = [];
  const reports: ManifestReport[] = [];
  readManifest(input).forEach((obj, i) => {
    if (obj === null || obj === undefined) return;
    if (!isObject(obj)) throw new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', `document ${i + 1} is not a Kubernetes object`);
    out.push(manifestYaml(injectObject(obj, i + 1, ctx, reports)));
  });
  return { output: out.join('---\n'), reports };
}
