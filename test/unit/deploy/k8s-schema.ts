// Validates Kubernetes objects against the OpenAPI schemas compiled into kubernetes-models (Kubernetes 1.36),
// and also reports unknown fields, which those schemas let through but a strict API server rejects.
import * as models from 'kubernetes-models';

type ModelClass = { apiVersion: string; kind: string; prototype: { validate(this: unknown): void } };

function registry(): Map<string, ModelClass> {
  const map = new Map<string, ModelClass>();
  const walk = (o: object, depth: number) => {
    for (const v of Object.values(o)) {
      if (typeof v === 'function' && typeof v.apiVersion === 'string' && typeof v.kind === 'string') {
        map.set(`${v.apiVersion}/${v.kind}`, v as unknown as ModelClass);
      } else if (v && typeof v === 'object' && depth < 3) walk(v, depth + 1);
    }
  };
  walk(models, 0);
  return map;
}

const MODELS = registry();

/**
 * Wraps the object so that every property the compiled validator reads is recorded. The validator reads
 * exactly the properties its schema defines (and every key of free-form maps), so a key never read is a
 * field the schema does not know: a typo, or a field of another Kubernetes version.
 */
function tracked(value: unknown, seen: Set<string>, path: string): unknown {
  if (Array.isArray(value)) {
    return new Proxy(value, {
      get(t, k, r) {
        const v = Reflect.get(t, k, r);
        return typeof k === 'string' && /^\d+$/.test(k) ? tracked(v, seen, `${path}/${k}`) : v;
      },
    });
  }
  if (value !== null && typeof value === 'object') {
    return new Proxy(value, {
      get(t, k, r) {
        const v = Reflect.get(t, k, r);
        if (typeof k !== 'string' || !Object.hasOwn(t, k)) return v;
        seen.add(`${path}/${k}`);
        return tracked(v, seen, `${path}/${k}`);
      },
    });
  }
  return value;
}

function allPaths(value: unknown, path: string, out: string[]): string[] {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) allPaths(v, `${path}/${i}`, out);
  }
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(`${path}/${k}`);
      allPaths(v, `${path}/${k}`, out);
    }
  }
  return out;
}

export interface SchemaResult {
  readonly ok: boolean;
  readonly errors: string[];
}

/** Schema errors plus unknown fields; also refuses alpha/beta apiVersions (removed or off by default). */
export function validateK8sObject(obj: unknown): SchemaResult {
  if (obj === null || typeof obj !== 'object') return { ok: false, errors: ['not an object'] };
  const o = obj as { apiVersion?: unknown; kind?: unknown };
  const key = `${String(o.apiVersion)}/${String(o.kind)}`;
  const model = MODELS.get(key);
  if (!model) return { ok: false, errors: [`no schema for ${key}`] };
  if (/(alpha|beta)\d*$/.test(String(o.apiVersion))) return { ok: false, errors: [`${key}: not a GA API version`] };
  const errors: string[] = [];
  const seen = new Set<string>();
  try {
    model.prototype.validate.call(tracked(obj, seen, ''));
  } catch (e) {
    errors.push(`${key}: ${(e as Error).message}`);
  }
  if (errors.length === 0) {
    for (const p of allPaths(obj, '', [])) if (!seen.has(p)) errors.push(`${key}: unknown field ${p}`);
  }
  return { ok: errors.length === 0, errors };
}

export function hasSchema(apiVersion: string, kind: string): boolean {
  return MODELS.has(`${apiVersion}/${kind}`);
}
