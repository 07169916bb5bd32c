// A list the control plane holds in memory for synchronous readers (the config hub, the gRPC guards), read from
// the store at start and again after every change here or announced by another replica. Reads run one at a time,
// so an older read never replaces a newer one; a read that finds the same list changes nothing and tells no one.
export class ReloadedList<T> {
  readonly #read: () => Promise<readonly T[]>;
  readonly #onReplaced: (items: readonly T[], first: boolean) => void;
  #items: readonly T[] = [];
  /** The held list as JSON, to tell a read that changed something; undefined before the first read. */
  #key: string | undefined;
  #reloading: Promise<void> = Promise.resolve();

  /** `onReplaced` runs when a read brought a different list (`first`: the read at start). */
  constructor(read: () => Promise<readonly T[]>, onReplaced: (items: readonly T[], first: boolean) => void) {
    this.#read = read;
    this.#onReplaced = onReplaced;
  }

  get items(): readonly T[] {
    return this.#items;
  }

  /** Drops the held items `keep` refuses (e.g. expired ones) without a read; true when it dropped any. */
  keep(keep: (item: T) => boolean): boolean {
    const kept = this.#items.filter(keep);
    if (kept.length === this.#items.length) return false;
    this.#items = kept;
    this.#key = JSON.stringify(kept);
    return true;
  }

  reload(): Promise<void> {
    const next = this.#reloading.then(() => this.#load());
    this.#reloading = next.catch(() => {});
    return next;
  }

  async #load(): Promise<void> {
    const items = await this.#read();
    const key = JSON.stringify(items);
    if (key === this.#key) return;
    const first = this.#key === undefined;
    this.#items = items;
    this.#key = key;
    this.#onReplaced(items, first);
  }
}
