// AuthorizationPolicy documents in, validated policies out: multi-document YAML files (errors name file:line:col
// and key), JSON objects from the control plane, and the stable JSON form that round-trips between them.
import { Composer, Document, LineCounter, type Node, Parser, isScalar } from 'yaml';
import { type ConfigProblem, duplicateKey, formatProblem, keyText, validateYamlNode } from '../config/validate-yaml.js';
import { MAX_CONFIG_DEPTH, tooDeepAt } from '../config/yaml-depth.js';
import { keyPathAt } from '../config/yaml-key-path.js';
import { TesseraError } from '../errors.js';
import { POLICY_API_VERSION, POLICY_KIND, flatPolicySchema, policyDocumentSchema } from './policy-schema.js';
import type { AuthorizationPolicy, PolicyAction, PolicyMode, PolicyRule } from './policy-types.js';

type Source = { file: string; line: number };

interface SpecValue {
  selector: string;
  action: PolicyAction;
  mode: PolicyMode;
  rules?: PolicyRule[];
}
interface DocumentValue {
  metadata: { name: string; source?: Source };
  spec: SpecValue;
}
interface FlatValue extends SpecValue {
  name: string;
  source?: Source;
}

const yamlSchema = policyDocumentSchema(false);
const jsonSchema = policyDocumentSchema(true);

function copyRule(r: PolicyRule): PolicyRule {
  const list = <T>(xs: T[]): T[] => Object.freeze([...xs]) as T[];
  const rule: PolicyRule = { from: list(r.from) };
  if (r.to) {
    const to: NonNullable<PolicyRule['to']> = {};
    if (r.to.ports) to.ports = list(r.to.ports);
    if (r.to.methods) to.methods = list(r.to.methods);
    if (r.to.paths) to.paths = list(r.to.paths);
    rule.to = Object.freeze(to);
  }
  return Object.freeze(rule);
}

function makePolicy(name: string, spec: SpecValue, source: Source | undefined): AuthorizationPolicy {
  const p: AuthorizationPolicy = {
    name,
    selector: spec.selector,
    action: spec.action,
    mode: spec.mode,
    rules: (spec.rules ?? []).map(copyRule),
  };
  if (source) p.source = Object.freeze({ file: source.file, line: source.line });
  Object.freeze(p.rules);
  return Object.freeze(p);
}

function invalid(file: string, lines: string[], first: { line: number; key: string }, problems: unknown[]): TesseraError {
  const more = lines.length > 10 ? `\n(and ${lines.length - 10} more)` : '';
  return new TesseraError('TESSERA_ERR_POLICY_INVALID', `${lines.slice(0, 10).join('\n')}${more}`, { file, line: first.line, key: first.key, problems });
}

/**
 * Parses every AuthorizationPolicy document of a YAML file ("---" separated; empty documents are skipped).
 * Throws TESSERA_ERR_POLICY_INVALID listing every problem as "file:line:col: key: what", or
 * TESSERA_ERR_POLICY_DUPLICATE_NAME when the file defines one name twice. All or nothing: no partial result.
 */
export function parsePolicyYaml(text: string, file: string): AuthorizationPolicy[] {
  const lineCounter = new LineCounter();
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
  // Refused before composing, which recurses once per level (as config files: yaml-depth.ts).
  const deep = tooDeepAt(tokens, MAX_CONFIG_DEPTH);
  if (deep !== undefined) {
    const at = lineCounter.linePos(deep);
    const problem = { file, line: at.line, column: at.col, key: '(yaml)', message: `nested deeper than ${MAX_CONFIG_DEPTH} levels of maps and lists (the most a policy file takes)` };
    throw invalid(file, [formatProblem(problem)], problem, [problem]);
  }
  const docs = Array.from(new Composer({ uniqueKeys: true }).compose(tokens));
  const problems: ConfigProblem[] = [];
  const duplicates: ConfigProblem[] = [];
  const policies: AuthorizationPolicy[] = [];
  const names = new Map<string, number>();
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = lineCounter.linePos(e.pos[0]);
      // A repeated key is named, as the configs name it (the parser's own text does not).
      const dup = duplicateKey(text, e);
      // By its full path (spec.rules[0].from): a leaf as common as `from` is in every rule.
      const path = dup === undefined ? undefined : keyPathAt(doc, e.pos[0]);
      const shown = path === undefined ? dup : keyText(path);
      problems.push({ file, line: pos.line, column: pos.col, key: '(yaml)', message: shown === undefined ? e.message.split('\n')[0]! : `the key ${shown} appears twice in the same map` });
      continue;
    }
    const contents = doc.contents as Node | null;
    // "---" with nothing after it, or only comments: an empty document, not a policy.
    if (contents === null || (isScalar(contents) && contents.value === null)) continue;
    const r = validateYamlNode<DocumentValue>(contents, yamlSchema, file, lineCounter);
    if (!r.value) {
      problems.push(...r.problems);
      continue;
    }
    const line = lineCounter.linePos(contents.range?.[0] ?? 0).line;
    const name = r.value.metadata.name;
    const nameNode = doc.getIn(['metadata', 'name'], true) as Node | undefined;
    const at = lineCounter.linePos(nameNode?.range?.[0] ?? 0);
    const prev = names.get(name);
    if (prev !== undefined) {
      duplicates.push({ file, line: at.line, column: at.col, key: 'metadata.name', message: `policy "${name}" is already defined at ${file}:${prev}` });
      continue;
    }
    names.set(name, at.line);
    policies.push(makePolicy(name, r.value.spec, { file, line }));
  }
  if (problems.length > 0 || duplicates.length > 0) {
    const all = [...problems, ...duplicates].sort((a, b) => a.line - b.line || a.column - b.column);
    const err = invalid(file, all.map(formatProblem), all[0]!, all);
    if (problems.length > 0) throw err;
    throw new TesseraError('TESSERA_ERR_POLICY_DUPLICATE_NAME', err.message, err.details);
  }
  return policies;
}

/**
 * Validates a policy that arrived as data (JSON over gRPC): the document form policyToJson writes (apiVersion,
 * kind, metadata{name, source?}, spec) or the flat AuthorizationPolicy shape. `source`, when given, prefixes the
 * error messages and becomes the policy's source. Throws TESSERA_ERR_POLICY_INVALID naming every bad key.
 */
export function parsePolicyObject(obj: unknown, source?: Source): AuthorizationPolicy {
  const isObject = typeof obj === 'object' && obj !== null && !Array.isArray(obj);
  const documentForm = isObject && ['apiVersion', 'kind', 'metadata', 'spec'].some((k) => k in obj);
  // Reuse the YAML validator by turning the value into YAML nodes (no positions: errors carry keys only).
  const node = new Document(obj, { aliasDuplicateObjects: false }).contents as Node | null;
  const where = source ? `${source.file}:${source.line}` : 'policy';
  if (documentForm || !isObject) {
    const r = validateYamlNode<DocumentValue>(node, jsonSchema, where, new LineCounter());
    if (!r.value) throw objectInvalid(where, r.problems, source);
    return makePolicy(r.value.metadata.name, r.value.spec, source ?? r.value.metadata.source);
  }
  const r = validateYamlNode<FlatValue>(node, flatPolicySchema, where, new LineCounter());
  if (!r.value) throw objectInvalid(where, r.problems, source);
  return makePolicy(r.value.name, r.value, source ?? r.value.source);
}

function objectInvalid(where: string, problems: ConfigProblem[], source: Source | undefined): TesseraError {
  const lines = problems.map((p) => `${where}: ${p.key || '(top level)'}: ${p.message}`);
  return invalid(source?.file ?? where, lines, { line: source?.line ?? 0, key: problems[0]?.key ?? '' }, problems);
}

/** The stable JSON text of a policy (fixed key order, no whitespace); parsePolicyObject(JSON.parse(x)) gives it back. */
export function policyToJson(p: AuthorizationPolicy): string {
  const metadata = p.source ? { name: p.name, source: { file: p.source.file, line: p.source.line } } : { name: p.name };
  const rules = p.rules.map((r) => {
    if (!r.to) return { from: r.from };
    const to: Record<string, unknown> = {};
    if (r.to.ports) to['ports'] = r.to.ports;
    if (r.to.methods) to['methods'] = r.to.methods;
    if (r.to.paths) to['paths'] = r.to.paths;
    return { from: r.from, to };
  });
  return JSON.stringify({
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    metadata,
    spec: { selector: p.selector, action: p.action, mode: p.mode, rules },
  });
}

/**
 * Parses a set of policy files, file by file in path order: a file with any problem contributes no policy and
 * yields one error (file:line: key: what). A name already defined by an earlier file is a
 * TESSERA_ERR_POLICY_DUPLICATE_NAME naming both files, and the later file contributes no policy.
 * Any error means the set is incomplete: callers must not enforce it in place of a good one.
 */
export function parsePolicyFiles(files: { path: string; text: string }[]): { policies: AuthorizationPolicy[]; errors: TesseraError[] } {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const policies: AuthorizationPolicy[] = [];
  const errors: TesseraError[] = [];
  const defined = new Map<string, Source>();
  for (const f of sorted) {
    let parsed: AuthorizationPolicy[];
    try {
      parsed = parsePolicyYaml(f.text, f.path);
    } catch (e) {
      if (!(e instanceof TesseraError)) throw e;
      errors.push(e);
      continue;
    }
    const clashes = parsed.filter((p) => defined.has(p.name));
    for (const p of parsed) if (!defined.has(p.name)) defined.set(p.name, p.source!);
    if (clashes.length === 0) {
      policies.push(...parsed);
      continue;
    }
    const lines = clashes.map((p) => {
      const first = defined.get(p.name)!;
      return `${f.path}:${p.source!.line}: metadata.name: policy "${p.name}" is already defined at ${first.file}:${first.line}`;
    });
    const first = clashes[0]!;
    errors.push(
      new TesseraError('TESSERA_ERR_POLICY_DUPLICATE_NAME', lines.join('\n'), {
        file: f.path,
        line: first.source!.line,
        key: 'metadata.name',
        otherFile: defined.get(first.name)!.file,
      }),
    );
  }
  return { policies, errors };
}
