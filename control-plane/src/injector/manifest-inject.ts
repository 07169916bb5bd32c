// Offline injection over a YAML stream: Pods and the pod templates of workload kinds; other objects pass through.
import { parseAllDocuments, stringify } from 'yaml';
import { TesseraError } from '../../../common/errors.js';
import { type Pod, isObject } from './k8s-types.js';
import { type InjectionContext, planInjection } from './plan-injection.js';
import { applyAdditions } from './pod-patch.js';

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

/** One object: a Pod, a workload with a pod template, a List of those (kubectl get -o yaml), or anything else. */
function injectObject(obj: Record<string, unknown>, document: number, ctx: InjectionContext, reports: ManifestReport[]): unknown {
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  if (kind === 'List' && Array.isArray(obj.items)) {
    return { ...obj, items: obj.items.map((item) => (isObject(item) ? injectObject(item, document, ctx, reports) : item)) };
  }
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '';
  const path = kind === 'Pod' ? [] : TEMPLATE_PATH[kind];
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
  reports.push({ document, kind, name, result: 'injected' });
  const injected = applyAdditions(plan.pod, plan.additions);
  if (path.length === 0) return injected;
  const next = structuredClone(obj);
  setIn(next, path, injected as Pod);
  return next;
}

/** Injects every Pod and pod template in a multi-document YAML text; the result is YAML again. */
export function injectManifests(text: string, ctx: InjectionContext): { output: string; reports: ManifestReport[] } {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs)) throw new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', 'the input is not a YAML document stream');
  const out: string[] = [];
  const reports: ManifestReport[] = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      throw new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', `document ${i + 1} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    }
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) return;
    if (!isObject(obj)) throw new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', `document ${i + 1} is not a Kubernetes object`);
    out.push(stringify(injectObject(obj, i + 1, ctx, reports), { lineWidth: 0 }));
  });
  return { output: out.join('---\n'), reports };
}
