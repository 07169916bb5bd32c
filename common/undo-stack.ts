// Start-up undo: whatever a failing start opened is closed again, newest first, so a refused start leaves no
// listener, timer or open database behind (the control plane's and the proxy's composition roots).

export class UndoStack {
  readonly #steps: (() => unknown)[] = [];

  push(step: () => unknown): void {
    this.#steps.push(step);
  }

  /** Runs `body`; when it throws, undoes what was pushed so far and rethrows. */
  async guard<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (e) {
      await this.unwind();
      throw e;
    }
  }

  async unwind(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // best effort: the start already failed with the error that matters
      }
    }
  }
}
