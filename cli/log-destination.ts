// Where the operational logger writes: pino's asynchronous file destination, bounded (lines past its buffer are
// dropped), with a count of the bytes handed to it and not yet written, so that a command can wait, boundedly, for
// its last lines before it exits (the destination's own flush() returns at once when it buffers nothing by size).
import pino from 'pino';

type SonicBoom = ReturnType<typeof pino.destination>;

export class LogDestination {
  readonly #dest: SonicBoom;
  #pending = 0;
  #released = false;
  #waiters: (() => void)[] = [];

  constructor(fd: number, maxBufferedBytes: number) {
    this.#dest = pino.destination({ fd, sync: false, maxLength: maxBufferedBytes });
    this.#dest.on('write', (n: number) => this.#done(n));
    // Emitted from within write(), for the line just handed over: it will never be written.
    this.#dest.on('drop', (data: string) => this.#done(Buffer.byteLength(data)));
    // A destination that failed (stderr closed) writes nothing more: nobody waits for it.
    this.#dest.on('error', () => this.#done(this.#pending));
  }

  /** Called by pino with each line. */
  write(line: string): boolean {
    // After release() a late line (a callback that fires during the exit) is dropped: the destroyed destination
    // would throw.
    if (this.#released) return true;
    this.#pending += Buffer.byteLength(line);
    return this.#dest.write(line);
  }

  /** The destination's own events ('drop' in tests). */
  get events(): NodeJS.EventEmitter {
    return this.#dest;
  }

  /**
   * Gives up on what is still waiting: nothing more is written, and pino's exit hook, which would otherwise write
   * the rest synchronously as the process exits, skips this destination (on a stderr nobody reads it would block
   * the exit forever).
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#dest.destroy();
    this.#done(this.#pending);
  }

  /** Resolves once every line handed over so far is written (or dropped). */
  idle(): Promise<void> {
    if (this.#pending <= 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #done(bytes: number): void {
    this.#pending = Math.max(0, this.#pending - bytes);
    if (this.#pending > 0) return;
    for (const w of this.#waiters.splice(0)) w();
  }
}
