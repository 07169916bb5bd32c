// The attempts placed on one endpoint that still wait for their response head, oldest first: a list threaded
// through the attempts themselves, not a Set. A Set that takes an attempt when it is placed and drops it at its
// answer is rehashed every few dozen requests, and V8 then kept the attempts it had held (and their exchanges) alive
// through the next scavenges into old space: ~140 bytes promoted per request on a sidecar balancing a service, ~20
// with the list (measured on Node 24 under `wrk -c32` through `tessera up`; data-run.ts and session-set.ts met the
// same). An attempt leaves with its links cleared, so a dead one keeps nothing alive.

/** What the list threads through: an attempt's place in its endpoint's list (null links: first, last or not in it). */
export interface AwaitingAttempt {
  readonly placedAtMs: number;
  awaitingPrev: AwaitingAttempt | null;
  awaitingNext: AwaitingAttempt | null;
  /** In the list now. */
  awaitingListed: boolean;
}

export class AwaitingAttempts {
  #first: AwaitingAttempt | null = null;
  #last: AwaitingAttempt | null = null;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The attempt that has waited longest, or null. */
  get oldest(): AwaitingAttempt | null {
    return this.#first;
  }

  add(a: AwaitingAttempt): void {
    if (a.awaitingListed) return;
    a.awaitingListed = true;
    a.awaitingPrev = this.#last;
    a.awaitingNext = null;
    if (this.#last) this.#last.awaitingNext = a;
    else this.#first = a;
    this.#last = a;
    this.#size++;
  }

  /** Takes `a` out; false when it was not in the list (answered already, or never placed here). */
  delete(a: AwaitingAttempt): boolean {
    if (!a.awaitingListed) return false;
    a.awaitingListed = false;
    if (a.awaitingPrev) a.awaitingPrev.awaitingNext = a.awaitingNext;
    else this.#first = a.awaitingNext;
    if (a.awaitingNext) a.awaitingNext.awaitingPrev = a.awaitingPrev;
    else this.#last = a.awaitingPrev;
    a.awaitingPrev = null;
    a.awaitingNext = null;
    this.#size--;
    return true;
  }
}
