// The cells behind the proxy's metrics: counters, gauges and histogram series kept in plain objects looked up
// through nested Maps (no key string per call) and handed to prom-client only at scrape time, so recording on
// the hot path costs a few map lookups. Label sets are capped so memory and series stay bounded.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Safety net per metric: distinct label combinations kept before further ones are folded into `other`. */
export const MAX_SERIES_PER_METRIC = 2000;

export type Key = string | number | boolean;
export type Labels = Record<string, string>;

/** A counter or gauge value kept outside prom-client; `reported` is what prom-client has seen already. */
export class Cell {
  n = 0;
  reported = 0;
  constructor(readonly labels: Labels) {}
}

/**
 * Values looked up by a fixed number of raw label values through nested Maps (no key string is built per
 * call). Raw values are normalised into label values once, when first seen; raw combinations that normalise to
 * the same labels (the callers past a cap, all `other`) share one entry, since a scrape may hold each series once.
 * Past `max` raw combinations, new ones share one overflow entry so memory and series stay bounded.
 */
export class LabelTable<T extends { readonly labels: Labels }> {
  readonly #root = new Map<Key, unknown>();
  readonly #make: (raw: readonly Key[]) => T;
  readonly #overflow: () => T;
  readonly #max: number;
  readonly entries: T[] = [];
  /** The entries by their label values (in label order), joined. */
  readonly #byLabels = new Map<string, T>();
  #raw = 0;
  #overflowEntry: T | undefined;

  constructor(make: (raw: readonly Key[]) => T, overflow: () => T, max = MAX_SERIES_PER_METRIC) {
    this.#make = make;
    this.#overflow = overflow;
    this.#max = max;
  }

  get1(a: Key): T {
    return (this.#root.get(a) as T | undefined) ?? this.#insert([a]);
  }

  get2(a: Key, b: Key): T {
    const m = this.#root.get(a) as Map<Key, unknown> | undefined;
    return (m?.get(b) as T | undefined) ?? this.#insert([a, b]);
  }

  get3(a: Key, b: Key, c: Key): T {
    const m = (this.#root.get(a) as Map<Key, unknown> | undefined)?.get(b) as Map<Key, unknown> | undefined;
    return (m?.get(c) as T | undefined) ?? this.#insert([a, b, c]);
  }

  get4(a: Key, b: Key, c: Key, d: Key): T {
    const m1 = (this.#root.get(a) as Map<Key, unknown> | undefined)?.get(b) as Map<Key, unknown> | undefined;
    return ((m1?.get(c) as Map<Key, unknown> | undefined)?.get(d) as T | undefined) ?? this.#insert([a, b, c, d]);
  }

  get5(a: Key, b: Key, c: Key, d: Key, e: Key): T {
    const m1 = (this.#root.get(a) as Map<Key, unknown> | undefined)?.get(b) as Map<Key, unknown> | undefined;
    const m2 = (m1?.get(c) as Map<Key, unknown> | undefined)?.get(d) as Map<Key, unknown> | undefined;
    return (m2?.get(e) as T | undefined) ?? this.#insert([a, b, c, d, e]);
  }

  #insert(raw: readonly Key[]): T {
    if (this.#raw >= this.#max) {
      this.#overflowEntry ??= this.#entry(this.#overflow());
      return this.#overflowEntry;
    }
    this.#raw++;
    let m = this.#root;
    for (let i = 0; i < raw.length - 1; i++) {
      let next = m.get(raw[i]!) as Map<Key, unknown> | undefined;
      if (!next) {
        next = new Map();
        m.set(raw[i]!, next);
      }
      m = next;
    }
    const v = this.#entry(this.#make(raw));
    m.set(raw[raw.length - 1]!, v);
    return v;
  }

  /** `made`, or the entry that already has its labels. */
  #entry(made: T): T {
    const key = Object.values(made.labels).join('\u0000');
    const known = this.#byLabels.get(key);
    if (known) return known;
    this.#byLabels.set(key, made);
    this.entries.push(made);
    return made;
  }

  all(): T[] {
    return this.entries;
  }
}

/** Label values from an open set (policy names, SPIFFE IDs): the first `max` distinct ones, then `other`; '' is `none`. */
export class CappedLabels {
  readonly #seen = new Set<string>();
  constructor(readonly max: number) {}

  label(value: string): string {
    if (value === '') return 'none';
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(value);
    return value;
  }
}

export function labelsOf(names: readonly string[], values: readonly string[]): Labels {
  const out: Labels = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = values[i]!;
  return out;
}

/** A counter whose hot path is `table.getN(...).n++`; deltas are handed to prom-client on collect. */
export function cellCounter(registry: Registry, name: string, help: string, labelNames: readonly string[], normalise: (raw: readonly Key[]) => string[]) {
  const table = new LabelTable<Cell>(
    (raw) => new Cell(labelsOf(labelNames, normalise(raw))),
    () => new Cell(labelsOf(labelNames, labelNames.map(() => 'other'))),
  );
  const counter = new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const c of table.all()) {
        if (c.n === c.reported) continue;
        this.inc(c.labels, c.n - c.reported);
        c.reported = c.n;
      }
    },
  });
  return { table, counter };
}

/**
 * One histogram series whose hot path is arithmetic on its own fields (prom-client's observe() hashes the labels
 * and validates them on every call). It has the shape prom-client 15 keeps per series (labels, per-bucket
 * bucketValues, sum, count), so collect() hands it over as is: nothing is copied per request.
 */
export class HistCell {
  readonly bucketValues: Record<string, number> = {};
  readonly #counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    readonly bounds: readonly number[],
  ) {
    this.#counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    // Above the last bound: only in count (the +Inf bucket), as in prom-client.
    if (i < b.length) this.#counts[i]!++;
    this.sum += v;
    this.count++;
  }

  /** Brings bucketValues up to date (at scrape time). */
  flush(): void {
    for (let i = 0; i < this.bounds.length; i++) this.bucketValues[this.bounds[i]!] = this.#counts[i]!;
  }
}

/** A histogram whose hot path is `table.getN(...).observe(v)`; its series are handed to prom-client on collect. */
export function cellHistogram(registry: Registry, name: string, help: string, labelNames: readonly string[], buckets: readonly number[], normalise: (raw: readonly Key[]) => string[]): LabelTable<HistCell> {
  const table = new LabelTable<HistCell>(
    (raw) => new HistCell(labelsOf(labelNames, normalise(raw)), buckets),
    () => new HistCell(labelsOf(labelNames, labelNames.map(() => 'other')), buckets),
  );
  new Histogram({
    name,
    help,
    labelNames,
    buckets: [...buckets],
    registers: [registry],
    collect() {
      // prom-client's own per-series map (15.x), keyed by its label hash; only these cells ever fill it (observe()
      // is never called), so a key of our own cannot meet one of its hashes. Checked by the metrics unit tests.
      const series = (this as unknown as { hashMap: Record<string, HistCell> }).hashMap;
      const all = table.all();
      for (let i = 0; i < all.length; i++) {
        all[i]!.flush();
        series[`#${i}`] = all[i]!;
      }
    },
  });
  return table;
}

export const str = (raw: readonly Key[]) => raw.map(String);

/** A gauge by `direction` whose hot path is `table.get1(direction).n += delta`; read by prom-client on collect. */
export function directionGauge(registry: Registry, name: string, help: string): LabelTable<Cell> {
  const table = new LabelTable<Cell>(
    ([d]) => new Cell({ direction: String(d) }),
    () => new Cell({ direction: 'other' }),
  );
  new Gauge({
    name,
    help,
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      for (const c of table.all()) this.set(c.labels, c.n);
    },
  });
  return table;
}
