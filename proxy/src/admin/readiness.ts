// Readiness as named conditions, registered in order by the composition root (main.ts, or workers/primary-main.ts
// with `workers: N`): the proxy is ready when every condition is met, and the reason it is not is the first unmet
// condition's. (The control plane's admin/readiness.ts adds a life-cycle phase, and its conditions answer null, not
// undefined, when met.)

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

  state(): { ready: boolean; reason?: string } {
    for (const c of this.#conditions) {
      const reason = c.check();
      if (reason) return { ready: false, reason };
    }
    return { ready: true };
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
