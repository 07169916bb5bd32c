// Wakes whoever waits for a set of connections to empty (graceful drain), told by the owner of the set on every
// removal, so nobody polls a count.

export class IdleSignal {
  readonly #waiters: (() => void)[] = [];

  /** Resolves once `size()` is 0 at a `changed` call (at once when it is 0 now). */
  wait(size: number): Promise<void> {
    if (size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The owner's set changed; `size` is its new size. */
  changed(size: number): void {
    if (size === 0) for (const w of this.#waiters.splice(0)) w();
  }
}
