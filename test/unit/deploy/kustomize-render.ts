// A tiny kustomize renderer for the schema test: exactly the features deploy/k8s uses (resources, namespace,
// images, Secret/ConfigMap generators without name hashes, replacements, JSON6902 patches, local-config),
// and an error for any other key. Not kustomize: where kubectl is installed, a test compares the two.
import { readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { type PatchOp, applyJsonPatch } from '../../helpers/json-patch.js';

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;

const SUPPORTED = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'images',
  'generatorOptions',
  'secretGenerator',
  'configMapGenerator',
  'replacements',
  'patches',
]);

/** Kinds kustomize's namespace transformer leaves alone (the cluster-scoped kinds deploy/k8s uses). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'CustomResourceDefinition']);
const LOCAL_CONFIG = 'config.kubernetes.io/local-config';

interface Generator {
  name: string;
  namespace?: string;
  type?: string;
  files?: string[];
  literals?: string[];
  options?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
  generatorOptions?: { disableNameSuffixHash?: boolean; labels?: Record<string, string>; annotations?: Record<string, string> };
  secretGenerator?: Generator[];
  configMapGenerator?: Generator[];
  replacements?: { source: { kind: string; name: string; fieldPath: string }; targets: { select: { kind: string; name?: string }; fieldPaths: string[]; options?: { create?: boolean } }[] }[];
  patches?: { target: { kind: string; name?: string }; patch?: string; path?: string }[];
}

function readDocs(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

function generate(dir: string, k: Kustomization): K8sObject[] {
  const opts = k.generatorOptions ?? {};
  const all = [...(k.secretGenerator ?? []).map((g) => ['Secret', g] as const), ...(k.configMapGenerator ?? []).map((g) => ['ConfigMap', g] as const)];
  if (all.length > 0 && opts.disableNameSuffixHash !== true) throw new Error(`${dir}: name-suffix hashes are not implemented; set generatorOptions.disableNameSuffixHash`);
  return all.map(([kind, g]) => {
    const data: Record<string, string> = {};
    for (const f of g.files ?? []) {
      const [key, path] = f.includes('=') ? f.split('=', 2) : [basename(f), f];
      const bytes = readFileSync(join(dir, path!));
      data[key!] = kind === 'Secret' ? bytes.toString('base64') : bytes.toString('utf8');
    }
    for (const l of g.literals ?? []) {
      const [key, value] = l.split('=', 2);
      data[key!] = kind === 'Secret' ? Buffer.from(value!).toString('base64') : value!;
    }
    const labels = { ...(opts.labels ?? {}), ...(g.options?.labels ?? {}) };
    const annotations = { ...(opts.annotations ?? {}), ...(g.options?.annotations ?? {}) };
    return {
      apiVersion: 'v1',
      kind,
      metadata: {
        name: g.name,
        ...(g.namespace ? { namespace: g.namespace } : {}),
        ...(Object.keys(labels).length ? { labels } : {}),
        ...(Object.keys(annotations).length ? { annotations } : {}),
      },
      ...(g.type ? { type: g.type } : {}),
      data,
    } as K8sObject;
  });
}

/** kustomize field paths: "a.b.0.c" and "a.[key=value].c". */
function pathTokens(fieldPath: string): string[] {
  return fieldPath.split('.');
}

function walk(obj: unknown, tokens: string[], create: boolean): { parent: Record<string, unknown> | unknown[]; key: string } | undefined {
  let cur: unknown = obj;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i]!;
    let next: unknown;
    if (Array.isArray(cur)) {
      const sel = /^\[(.+)=(.+)\]$/.exec(t);
      next = sel ? cur.find((e) => (e as Record<string, unknown>)?.[sel[1]!] === sel[2]) : cur[Number(t)];
    } else if (cur && typeof cur === 'object') {
      const o = cur as Record<string, unknown>;
      if (o[t] === undefined && create) o[t] = {};
      next = o[t];
    }
    if (next === undefined) return undefined;
    cur = next;
  }
  return cur && typeof cur === 'object' ? { parent: cur as Record<string, unknown>, key: tokens[tokens.length - 1]! } : undefined;
}

function replace(objects: K8sObject[], k: Kustomization): void {
  for (const r of k.replacements ?? []) {
    const src = objects.find((o) => o.kind === r.source.kind && o.metadata.name === r.source.name);
    if (!src) throw new Error(`replacement source ${r.source.kind}/${r.source.name} not found`);
    const at = walk(src, pathTokens(r.source.fieldPath), false);
    const value = at ? (at.parent as Record<string, unknown>)[at.key] : undefined;
    if (value === undefined) throw new Error(`replacement source field ${r.source.fieldPath} not found`);
    for (const t of r.targets) {
      const targets = objects.filter((o) => o.kind === t.select.kind && (t.select.name === undefined || o.metadata.name === t.select.name));
      if (targets.length === 0) throw new Error(`replacement target ${t.select.kind}/${t.select.name} not found`);
      for (const o of targets) {
        for (const fp of t.fieldPaths) {
          const dest = walk(o, pathTokens(fp), t.options?.create === true);
          if (!dest) throw new Error(`replacement target field ${fp} not found in ${o.kind}/${o.metadata.name}`);
          (dest.parent as Record<string, unknown>)[dest.key] = structuredClone(value);
        }
      }
    }
  }
}

function podSpecs(o: K8sObject): Record<string, unknown>[] {
  const spec = o.spec as Record<string, unknown> | undefined;
  if (!spec) return [];
  if (o.kind === 'Pod') return [spec];
  const template = spec.template as { spec?: Record<string, unknown> } | undefined;
  return template?.spec ? [template.spec] : [];
}

function setImages(objects: K8sObject[], k: Kustomization): void {
  for (const img of k.images ?? []) {
    for (const o of objects) {
      for (const ps of podSpecs(o)) {
        for (const c of [...((ps.initContainers as { image?: string }[]) ?? []), ...((ps.containers as { image?: string }[]) ?? [])]) {
          if (!c.image) continue;
          const m = /^([^:@]+(?::\d+\/[^:@]+)?)(?::([^@]+))?(@.+)?$/.exec(c.image);
          if (!m || m[1] !== img.name) continue;
          c.image = `${img.newName ?? m[1]}${img.newTag ? `:${img.newTag}` : m[2] ? `:${m[2]}` : ''}`;
        }
      }
    }
  }
}

function patch(dir: string, objects: K8sObject[], k: Kustomization): K8sObject[] {
  let out = objects;
  for (const p of k.patches ?? []) {
    const text = p.patch ?? readFileSync(join(dir, p.path!), 'utf8');
    const ops = parseYaml(text) as PatchOp[];
    if (!Array.isArray(ops)) throw new Error(`${dir}: only JSON6902 patches (a list of ops) are implemented`);
    let hit = false;
    out = out.map((o) => {
      if (o.kind !== p.target.kind || (p.target.name !== undefined && o.metadata.name !== p.target.name)) return o;
      hit = true;
      return applyJsonPatch(o, ops);
    });
    if (!hit) throw new Error(`${dir}: patch target ${p.target.kind}/${p.target.name} not found`);
  }
  return out;
}

function build(dir: string): K8sObject[] {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization & Record<string, unknown>;
  for (const key of Object.keys(k)) if (!SUPPORTED.has(key)) throw new Error(`${dir}/kustomization.yaml: "${key}" is not implemented by this renderer`);
  let objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const p = resolve(dir, r);
    objects = objects.concat(statSync(p).isDirectory() ? build(p) : readDocs(p));
  }
  objects = objects.concat(generate(dir, k));
  if (k.namespace) {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  setImages(objects, k);
  objects = patch(dir, objects, k);
  replace(objects, k);
  return objects;
}

/** Renders a kustomization directory into its objects (local-config objects dropped, as kustomize does). */
export function renderKustomization(dir: string): K8sObject[] {
  return build(dir).filter((o) => o.metadata.annotations?.[LOCAL_CONFIG] !== 'true');
}
