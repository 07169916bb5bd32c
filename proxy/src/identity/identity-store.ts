// One writer, many readers: holds the current IdentitySnapshot. An update is validated whole before it is
// swapped in; a bad update is refused, counted by the caller, and the previous snapshot stays in force.
import type { Clock } from '../../../common/clock.js';
import { type IdentityInput, type IdentitySnapshot, buildIdentitySnapshot } from './identity-snapshot.js';

export type IdentityListener = (snapshot: IdentitySnapshot) => void;

export class IdentityStore {
  readonly #clock: Clock;
  #current: IdentitySnapshot | undefined;
  #generation = 0;
  readonly #listeners = new Set<IdentityListener>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The snapshot in force, or undefined before the first SVID and bundle have loaded. */
  get current(): IdentitySnapshot | undefined {
    return this.#current;
  }

  /** Validates and installs; throws (TesseraError) and keeps the old snapshot when the input is bad. */
  update(input: IdentityInput): IdentitySnapshot {
    const next = buildIdentitySnapshot(input, this.#generation + 1, this.#clock.nowMs());
    this.#generation = next.generation;
    this.#current = next;
    for (const l of this.#listeners) l(next);
    return next;
  }

  /** Called after every accepted update; returns the unsubscribe function. */
  subscribe(listener: IdentityListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
