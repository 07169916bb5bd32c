// A store view (inventory, tokens, audit, …) whose every failing method reports its error before throwing it:
// mapped to its store code first (SQLite, the files beside it), then told to the observer (the log, readiness).
// Methods run on the view itself, so classes with private fields work unchanged; anything but a method passes through.

/** Told of every failed store operation: the view (`inventory`), the method (`record`) and the error as thrown. */
export type StoreFailureObserver = (area: string, op: string, e: unknown) => void;

export interface ObservedViewOptions {
  /** The error as callers get it (default: as the view threw it). */
  readonly map?: (e: unknown) => unknown;
  readonly onFailure?: StoreFailureObserver;
}

export function observedView<T extends object>(view: T, area: string, o: ObservedViewOptions): T {
  if (!o.map && !o.onFailure) return view;
  const fail = (op: string, e: unknown): unknown => {
    const err = o.map ? o.map(e) : e;
    o.onFailure?.(area, op, err);
    return err;
  };
  return new Proxy(view, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        let out: unknown;
        try {
          out = method.apply(target, args);
        } catch (e) {
          throw fail(prop, e);
        }
        return out instanceof Promise
          ? out.catch((e: unknown) => {
              throw fail(prop, e);
            })
          : out;
      };
    },
  });
}
