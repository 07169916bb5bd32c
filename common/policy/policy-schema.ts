// The schema of an AuthorizationPolicy document (YAML, or JSON over gRPC), checked by common/config/validate-yaml.ts.
import type { ObjectSchema, Schema } from '../config/schema.js';
import { describeError } from '../errors.js';
import { compileIdPattern, compilePathPattern } from '../spiffe/match.js';
import { normalizeHttpPath } from './normalize-path.js';
import { UNAUTHENTICATED } from './policy-types.js';

export const POLICY_API_VERSION = 'tessera.dev/v1';
export const POLICY_KIND = 'AuthorizationPolicy';

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
// An HTTP method token (RFC 9110 tchar), upper case: methods are case-sensitive and every standard one is upper case.
const METHOD = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]*$/;

export function checkPolicyName(v: string): string | null {
  if (v.length > 253) return `"${v.slice(0, 40)}…" is longer than 253 characters`;
  return NAME.test(v) ? null : `"${v}" is not a valid name (lower-case a-z, 0-9, "-", "."; starts and ends with a letter or digit)`;
}

export function checkMethod(v: string): string | null {
  return METHOD.test(v) ? null : `"${v}" is not an upper-case HTTP method (e.g. GET, POST)`;
}

/** A path pattern must compile and already be in normal form, or it could never match a normalized request path. */
export function checkPathPattern(v: string): string | null {
  try {
    compilePathPattern(v);
  } catch (e) {
    return `"${v}" is not a path pattern (${(e as Error).message})`;
  }
  if (v.includes('?') || v.includes('#')) return `"${v}": a path pattern has no query or fragment (queries are ignored)`;
  const normal = normalizeHttpPath(v);
  if (normal !== v) return `"${v}" is not a normalized path${normal === null ? '' : ` (write "${normal}")`}: it could never match`;
  return null;
}

/** A `from` entry: a SPIFFE ID pattern, or the word `unauthenticated` (callers without a verified SPIFFE ID). */
export function checkCallerPattern(v: string): string | null {
  if (v === UNAUTHENTICATED) return null;
  try {
    compileIdPattern(v);
    return null;
  } catch (e) {
    return `"${v}" is not a SPIFFE ID pattern or "${UNAUTHENTICATED}" (${describeError(e)})`;
  }
}

const ruleSchema: ObjectSchema = {
  type: 'object',
  properties: {
    from: { type: 'array', required: true, minItems: 1, items: { type: 'string', check: checkCallerPattern } },
    to: {
      type: 'object',
      properties: {
        ports: { type: 'array', minItems: 1, items: { type: 'number', integer: true, min: 1, max: 65535 } },
        methods: { type: 'array', minItems: 1, items: { type: 'string', check: checkMethod } },
        paths: { type: 'array', minItems: 1, items: { type: 'string', check: checkPathPattern } },
      },
    },
  },
};

const specProperties: Record<string, Schema> = {
  selector: { type: 'string', required: true, format: 'id-pattern' },
  action: { type: 'string', required: true, enum: ['ALLOW', 'DENY'] },
  mode: { type: 'string', enum: ['enforce', 'audit'], default: 'enforce' },
  rules: { type: 'array', items: ruleSchema },
};

const nameSchema: Schema = { type: 'string', required: true, check: checkPolicyName };

const sourceSchema: Schema = {
  type: 'object',
  properties: { file: { type: 'string', required: true }, line: { type: 'number', required: true, integer: true, min: 1 } },
};

/** The YAML document. `withSource` also admits metadata.source, which only the JSON form (policyToJson) carries. */
export function policyDocumentSchema(withSource: boolean): ObjectSchema {
  return {
    type: 'object',
    properties: {
      apiVersion: { type: 'string', required: true, enum: [POLICY_API_VERSION] },
      kind: { type: 'string', required: true, enum: [POLICY_KIND] },
      metadata: { type: 'object', required: true, properties: withSource ? { name: nameSchema, source: sourceSchema } : { name: nameSchema } },
      spec: { type: 'object', required: true, properties: specProperties },
    },
  };
}

/** The flat form: an AuthorizationPolicy value itself (name, selector, action, mode, rules, source). */
export const flatPolicySchema: ObjectSchema = {
  type: 'object',
  properties: { name: nameSchema, ...specProperties, source: sourceSchema },
};
