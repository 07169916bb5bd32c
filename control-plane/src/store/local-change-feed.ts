// The change feed of a store that one process owns (SQLite): an announcement reaches this process's subscribers
// on a microtask, after the announcing code has finished its synchronous part, as a PostgreSQL notification would.
import type { ChangeFeed, ChangeTopic } from './store-contract.js';

export class LocalChangeFeed implements ChangeFeed {
  readonly #subscribers = new Map<ChangeTopic, Set<() => void>>();
  readonly #onError: (e: unknown) => void;

  /** `onError`: a subscriber threw (the others are still called). */
  constructor(onError: (e: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  announce(topic: ChangeTopic): Promise<void> {
    return new Promise((resolve) => {
      queueMicrotask(() => {
        for (const fn of [...(this.#subscribers.get(topic) ?? [])]) {
          try {
            fn();
          } catch (e) {
            this.#onError(e);
          }
        }
        resolve();
      });
    });
  }

  subscribe(topic: ChangeTopic, fn: () => void): () => void {
    const set = this.#subscribers.get(topic) ?? new Set();
    this.#subscribers.set(topic, set);
    // A wrapper per subscription, so subscribing one function twice needs two unsubscribes.
    const entry = () => fn();
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }
}
