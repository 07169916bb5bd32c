// A small, strict RFC 6902 JSON Patch applier (add, remove, replace, test) written independently of the
// injector's generator, so tests check the patched object rather than trusting the patch's own shape.

export type PatchOp = { op: string; path: string; value?: unknown; from?: string };

/** RFC 6901 pointer → tokens; "~1" decodes to "/" and then "~0" to "~". */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`pointer "${pointer}" does not start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => {
      if (/~[^01]|~$/.test(t)) throw new Error(`bad escape in pointer token "${t}"`);
      return t.replaceAll('~1', '/').replaceAll('~0', '~');
    });
}

type Container = Record<string, unknown> | unknown[];

function arrayIndex(arr: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`"${token}" is not an array index`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new Error(`index ${i} out of bounds (length ${arr.length})`);
  return i;
}

function parentOf(doc: unknown, tokens: string[]): { parent: Container; key: string } {
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)];
    else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, t)) cur = (cur as Record<string, unknown>)[t];
    else throw new Error(`path segment "${t}" does not exist`);
  }
  if (cur === null || typeof cur !== 'object') throw new Error('parent is not a container');
  return { parent: cur as Container, key: tokens[tokens.length - 1]! };
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Returns a new document; throws on any op that RFC 6902 says must fail (missing parent, bad index…). */
export function applyJsonPatch<T>(document: T, ops: readonly PatchOp[]): T {
  let doc: unknown = structuredClone(document);
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    const value = structuredClone(op.value);
    if (tokens.length === 0) {
      if (op.op === 'add' || op.op === 'replace') doc = value;
      else if (op.op === 'test') {
        if (!deepEqual(doc, value)) throw new Error('test failed at root');
      } else throw new Error(`op ${op.op} on the root`);
      continue;
    }
    const { parent, key } = parentOf(doc, tokens);
    switch (op.op) {
      case 'add':
        if (!('value' in op)) throw new Error(`add ${op.path} has no value`);
        if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
        else parent[key] = value;
        break;
      case 'replace':
      case 'remove':
      case 'test': {
        if (Array.isArray(parent)) {
          const i = arrayIndex(parent, key, false);
          if (op.op === 'replace') parent[i] = value;
          else if (op.op === 'remove') parent.splice(i, 1);
          else if (!deepEqual(parent[i], value)) throw new Error(`test failed at ${op.path}`);
        } else {
          if (!Object.hasOwn(parent, key)) throw new Error(`${op.op} ${op.path}: no such member`);
          if (op.op === 'replace') parent[key] = value;
          else if (op.op === 'remove') delete parent[key];
          else if (!deepEqual(parent[key], value)) throw new Error(`test failed at ${op.path}`);
        }
        break;
      }
      default:
        throw new Error(`unsupported op "${op.op}"`);
    }
  }
  return doc as T;
}
