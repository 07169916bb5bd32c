// Which keys differ between two parsed configs, by their JSON values: what a watcher of a config file names when
// the file changes (the injector applies them, the control plane says a restart applies them). One compare for both.

/** JSON of a config value (undefined for an undefined one, as for an absent key); bigints (byte sizes) as their digits. */
const json = (v: unknown): string | undefined => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The values of `value` by key: its top-level keys, or with `nested` every leaf as a dotted key (`resources.limits.memory`). */
function entries(value: unknown, nested: boolean, prefix = ''): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  if (isObject(value) && (nested || prefix === '')) {
    for (const [k, v] of Object.entries(value)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (nested) for (const [lk, lv] of entries(v, true, key)) out.set(lk, lv);
      else out.set(key, json(v));
    }
  } else {
    out.set(prefix, json(value));
  }
  return out;
}

/** Keys whose value differs between `before` and `after`, sorted; `ignore` top-level keys are left out. */
export function changedKeys(before: unknown, after: unknown, o: { readonly nested: boolean; readonly ignore?: readonly string[] }): string[] {
  const a = entries(before, o.nested);
  const b = entries(after, o.nested);
  const ignored = (k: string) => o.ignore?.includes(k.split('.')[0]!) ?? false;
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => !ignored(k) && a.get(k) !== b.get(k)).sort();
}
