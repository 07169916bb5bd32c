// Readiness as named conditions, registered in order by a composition root (the proxy's, the control plane's): ready
// when every condition is met, and the reason it is not is the first unmet condition's. One convention for "met"
// everywhere a reason is asked for: undefined.

/** A condition: undefined when met, else the reason it is not. */
export type Condition = () => string | undefined;

export class Readiness {
  readonly #conditions: { readonly name: string; readonly check: Condition }[] = [];

  add(name: string, check: Condition): this {
    this.#conditions.push({ name, check });
    return this;
  }

  /** The names in order, for diagnostics and tests. */
  get names(): readonly string[] {
    return this.#conditions.map((c) => c.name);
  }

  /** The first unmet condition's reason; undefined when all are met. */
  readonly notReadyReason = (): string | undefined => {
    for (const c of this.#conditions) {
      const reason = c.check();
      if (reason !== undefined) return reason;
    }
    return undefined;
  };

  state(): { ready: boolean; reason?: string } {
    const reason = this.notReadyReason();
    return reason === undefined ? { ready: true } : { ready: false, reason };
  }
}

/** A one-way switch (listeners up, draining): set once, never cleared. */
export class Latch {
  #set = false;

  set(): void {
    this.#set = true;
  }

  get isSet(): boolean {
    return this.#set;
  }
}
