// A small declarative schema for YAML config files: closed objects (unknown keys are errors), scalars with
// formats (address, duration, SPIFFE ID), arrays and maps. Validated by validate-yaml.ts.

export type Schema = StringSchema | NumberSchema | BooleanSchema | DurationSchema | ArraySchema | ObjectSchema | MapSchema;

interface Base {
  readonly description?: string;
  /** A required key must be present in its parent object. */
  readonly required?: boolean;
  /**
   * The key belongs only when a sibling key has this value (its own or its default): `store.url` only with `kind:
   * postgres`. Written otherwise, it is refused at its own line; its default is filled in only where it belongs,
   * so a default is never mistaken for something the user wrote.
   */
  readonly onlyWhen?: { readonly key: string; readonly is: string };
}

export interface StringSchema extends Base {
  readonly type: 'string';
  readonly enum?: readonly string[];
  /**
   * address = host:port (IPv6 in brackets), spiffe-id = a valid SPIFFE ID, id-pattern = ID with wildcards,
   * trust-domain = a trust domain name ("example.org", or "spiffe://example.org"). A SPIFFE-typed value that is
   * refused names the specific TESSERA_ERR_SPIFFE_ID_* code, at the key's line.
   */
  readonly format?: 'address' | 'spiffe-id' | 'id-pattern' | 'trust-domain' | 'url' | 'path';
  readonly minLength?: number;
  readonly default?: string;
  /** A further check of the value: returns what is wrong with it, or null when it is fine. */
  readonly check?: (value: string) => string | null;
}

export interface NumberSchema extends Base {
  readonly type: 'number';
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
  readonly default?: number;
}

export interface BooleanSchema extends Base {
  readonly type: 'boolean';
  readonly default?: boolean;
}

/** A duration string ("60s", "1h30m") that validates to a number of milliseconds. */
export interface DurationSchema extends Base {
  readonly type: 'duration';
  readonly min?: number;
  readonly max?: number;
  readonly default?: string;
}

export interface ArraySchema extends Base {
  readonly type: 'array';
  readonly items: Schema;
  readonly minItems?: number;
  readonly maxItems?: number;
}

export interface ObjectSchema extends Base {
  readonly type: 'object';
  readonly properties: Readonly<Record<string, Schema>>;
  /** Groups of keys of which exactly one must be present (e.g. identity.controlPlane vs identity.files). */
  readonly exactlyOneOf?: readonly (readonly string[])[];
  /**
   * Left out, the section reads as if written empty (no `svid:` is `svid: {}`): its keys' defaults, so the code
   * reading the config takes every default from the schema and repeats none. Only for a section that can be written
   * empty (no required key, no exactlyOneOf), and not for one whose presence turns something on (`federation: {}`).
   */
  readonly absentAsEmpty?: true;
}

/** An object with free-form keys whose values all follow one schema. */
export interface MapSchema extends Base {
  readonly type: 'map';
  readonly values: Schema;
  /** Why a key is not acceptable, or null (reported at the key's line like any other problem). */
  readonly keyCheck?: (key: string) => string | null;
  readonly maxKeys?: number;
}
