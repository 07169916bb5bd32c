// Keeps the primary's summed counters from going backwards when a worker dies or misses a scrape (docs/workers.md,
// "One admin view"). Per worker slot: the last values its process reported for every summed counter and histogram
// series, and an offset holding what the slot's earlier processes had counted. A replaced process (a new pid) folds
// its last values into the offset; a worker that does not answer is counted at its last values. Prometheus reads
// any decrease of a counter as a reset and would count the survivors' totals again in rate()/increase().
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

type MetricJson = MetricObjectWithValues<MetricValue<string>>;
type Entry = MetricValue<string> & { metricName?: string };
/** One metric's series by key (series name and labels): a worker's reported set or a slot's offset. */
type Table = Map<string, { readonly meta: MetricJson; readonly series: Map<string, Entry> }>;

/**
 * A slot's offset holds the series of all its earlier processes: each is bounded by the label caps, but different
 * processes may admit different label values (first come), so the union is bounded once more here; series beyond
 * it are added to the same metric's series with every label but `le` set to `other` (the sum is kept).
 */
export const MAX_CARRIED_SERIES = 20_000;
/** Pids of a slot's earlier processes kept to ignore a late answer of one (scrapes can overlap). */
const RETIRED_PIDS = 8;

class SlotCarry {
  pid: number | undefined;
  readonly retired: number[] = [];
  last: Table = new Map();
  readonly offset: Table = new Map();
  offsetSeries = 0;
}

/** Counters and histograms whose series are summed over the workers: the ones whose sum must not decrease. */
function carried(m: MetricJson): boolean {
  // prom-client types `type` as an enum; the JSON (and the IPC copy of it) has the strings.
  const type = m.type as unknown as string;
  return (type === 'counter' || type === 'histogram') && (m.aggregator ?? 'sum') === 'sum';
}

function seriesKey(e: Entry): string {
  const labels = Object.entries(e.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${e.metricName ?? ''}\u0000${JSON.stringify(labels)}`;
}

function tableOf(metrics: readonly MetricJson[]): Table {
  const table: Table = new Map();
  for (const m of metrics) {
    if (!carried(m)) continue;
    const series = new Map<string, Entry>();
    for (const v of m.values as Entry[]) series.set(seriesKey(v), { value: v.value, labels: v.labels, ...(v.metricName ? { metricName: v.metricName } : {}) });
    table.set(m.name, { meta: { ...m, values: [] }, series });
  }
  return table;
}

function toJson(table: Table): MetricJson[] {
  return [...table.values()].map(({ meta, series }) => ({ ...meta, values: [...series.values()] }));
}

/** The same series with every label but a histogram's `le` replaced by `other`. */
function overflow(e: Entry): Entry {
  const labels = Object.fromEntries(Object.entries(e.labels ?? {}).map(([k, v]) => [k, k === 'le' ? v : 'other']));
  return { ...e, labels };
}

export class CounterCarry {
  readonly #slots = new Map<number, SlotCarry>();

  /**
   * Takes one slot's answer (`metrics` undefined: it did not answer) and returns what is summed for it: the
   * carried series (offset + last values) and, when it answered, its other series (gauges) as reported; a worker
   * that did not answer has no gauges (its connections may be gone).
   */
  update(slot: number, pid: number | undefined, metrics: readonly unknown[] | undefined): MetricJson[][] {
    const c = this.#slots.get(slot) ?? new SlotCarry();
    this.#slots.set(slot, c);
    // A late answer of a replaced process (scrapes can overlap) is not counted: its counts are in the offset.
    const reported = pid !== undefined && c.retired.includes(pid) ? undefined : (metrics as MetricJson[] | undefined);
    // Without a pid (no process identity) the answer is taken as the same process's.
    if (reported) {
      if (pid !== undefined && c.pid !== undefined && c.pid !== pid) this.#retire(c);
      c.pid = pid ?? c.pid;
      this.#takeMax(c.last, tableOf(reported));
    }
    const gauges = reported ? reported.filter((m) => !carried(m)) : [];
    return [gauges, toJson(c.last), toJson(c.offset)];
  }

  /** The slot's process was replaced: what it had counted moves into the offset, for good. */
  #retire(c: SlotCarry): void {
    for (const [name, { meta, series }] of c.last) {
      const into = c.offset.get(name) ?? { meta, series: new Map<string, Entry>() };
      c.offset.set(name, into);
      for (const [key, e] of series) {
        const known = into.series.has(key);
        const k = known || c.offsetSeries < MAX_CARRIED_SERIES ? key : seriesKey(overflow(e));
        const had = into.series.get(k);
        if (had) had.value += e.value;
        else {
          into.series.set(k, k === key ? { ...e } : overflow(e));
          c.offsetSeries++;
        }
      }
    }
    c.retired.push(c.pid!);
    if (c.retired.length > RETIRED_PIDS) c.retired.shift();
    c.last = new Map();
  }

  /** One process's counters only grow: an older answer that arrives late must not lower them. */
  #takeMax(last: Table, now: Table): void {
    for (const [name, fresh] of now) {
      const had = last.get(name);
      if (!had) {
        last.set(name, fresh);
        continue;
      }
      for (const [key, e] of fresh.series) {
        const old = had.series.get(key);
        if (!old || e.value > old.value) had.series.set(key, e);
      }
    }
  }
}
