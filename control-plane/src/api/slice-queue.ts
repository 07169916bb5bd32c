// Work that must not run as one long synchronous block: items are queued (each at most once, in the order first
// queued) and run in slices of bounded cost, the event loop getting a turn between slices (setImmediate: pending I/O
// such as /ready and new calls goes first). Config/Watch queues its streams here, so a thousand opens or a publish
// to a thousand streams, each writing a snapshot of a large policy set, is many short turns and not seconds of one.
export interface SliceQueueOptions<T> {
  /** Runs one item; returns what it cost (snapshot bytes written, say). */
  readonly run: (item: T) => number;
  /** A slice ends once its items cost this much in total (at least one item runs per slice). */
  readonly budget: number;
  /** Items per slice at most, whatever they cost. */
  readonly maxItems: number;
  /** Schedules the next slice (default setImmediate). */
  readonly defer?: (fn: () => void) => void;
}

export class SliceQueue<T> {
  readonly #o: SliceQueueOptions<T>;
  /** Item -> its sequence number; a Map iterates in insertion order, so the first entry is the oldest. */
  readonly #queued = new Map<T, number>();
  #seq = 0;
  #done = 0;
  #scheduled = false;
  /** Callers waiting until everything queued up to their sequence number has run. */
  #waiters: { upTo: number; resolve: () => void }[] = [];

  constructor(opts: SliceQueueOptions<T>) {
    this.#o = opts;
  }

  get size(): number {
    return this.#queued.size;
  }

  /** Queues `item` unless it is queued already (it then keeps its place: it will run with what is newest then). */
  add(item: T): void {
    if (this.#queued.has(item)) return;
    this.#queued.set(item, ++this.#seq);
    this.#schedule();
  }

  /** Resolves once every item queued so far has run (or was dropped). */
  flushed(): Promise<void> {
    if (this.#queued.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ upTo: this.#seq, resolve }));
  }

  /** Forgets `item` if it is queued (its stream ended). */
  drop(item: T): void {
    if (!this.#queued.delete(item)) return;
    if (this.#queued.size === 0) this.#settle(this.#seq);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    (this.#o.defer ?? setImmediate)(() => this.#slice());
  }

  #slice(): void {
    this.#scheduled = false;
    let cost = 0;
    let items = 0;
    try {
      while (this.#queued.size > 0 && cost < this.#o.budget && items < this.#o.maxItems) {
        const [item, seq] = this.#queued.entries().next().value!;
        this.#queued.delete(item);
        items++;
        try {
          cost += this.#o.run(item);
        } finally {
          this.#settle(this.#queued.size === 0 ? this.#seq : seq);
        }
      }
    } finally {
      // A run that threw still leaves the rest to the next slice.
      if (this.#queued.size > 0) this.#schedule();
    }
  }

  #settle(done: number): void {
    this.#done = Math.max(this.#done, done);
    if (this.#waiters.length === 0) return;
    const ready = this.#waiters.filter((w) => w.upTo <= this.#done);
    this.#waiters = this.#waiters.filter((w) => w.upTo > this.#done);
    for (const w of ready) w.resolve();
  }
}
