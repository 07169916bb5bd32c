// The `tessera` process's stdout and stderr as commands write them, and the wait for them before the process exits.
// Into a pipe Node writes asynchronously, so a process.exit() right after the last write dropped whatever the pipe
// had not taken yet (64 KiB: `tessera certs list --json | jq` read cut JSON, exit 0; audit 54b F2). A reader that
// goes away (EPIPE: `| head -1`) is reported once to onGone instead of an uncaught 'error' with a stack trace.

/** The part of process.stdout / process.stderr used here. */
export interface OutputStream {
  write(text: string, done?: (err?: Error | null) => void): boolean;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

class TrackedStream {
  readonly #stream: OutputStream;
  readonly #onGone: (err: Error) => void;
  #gone = false;

  constructor(stream: OutputStream, onGone: (err: Error) => void) {
    this.#stream = stream;
    this.#onGone = onGone;
    stream.on('error', (err) => this.#fail(err));
  }

  write(text: string): void {
    // Nothing more reaches a reader that went away; the process is ending (onGone) or the command finishing.
    if (!this.#gone) this.#stream.write(text);
  }

  /** Resolves once everything written before the call has been taken (or the stream failed). */
  settled(): Promise<void> {
    if (this.#gone) return Promise.resolve();
    // Writes complete in order: the callback of an empty write runs after every earlier one was handed to the
    // kernel, or with the error that ended the stream (its 'error' event would come only on a later tick).
    return new Promise((resolve) => {
      this.#stream.write('', (err) => {
        if (err) this.#fail(err);
        resolve();
      });
    });
  }

  #fail(err: Error): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#onGone(err);
  }
}

export class ProcessOutput {
  readonly #out: TrackedStream;
  readonly #err: TrackedStream;

  /** onGone: a stream's reader went away (EPIPE) or its write failed; called once per stream. */
  constructor(stdout: OutputStream, stderr: OutputStream, onGone: (err: Error) => void) {
    this.#out = new TrackedStream(stdout, onGone);
    this.#err = new TrackedStream(stderr, onGone);
  }

  readonly stdout = (text: string): void => this.#out.write(text);
  readonly stderr = (text: string): void => this.#err.write(text);

  /** Resolves once both streams took everything written so far: a slow reader gets all of it. */
  settled(): Promise<void> {
    return Promise.all([this.#out.settled(), this.#err.settled()]).then(() => undefined);
  }
}

/** The status a shell reports for a process SIGPIPE ended (128 + 13), as `seq 1e6 | head -1` gives `seq`. */
export const EXIT_READER_GONE = 141;

/** EPIPE is a reader that went away (141); any other write error (EIO of a lost terminal) is a failure (1). */
export const exitStatusWhenGone = (err: Error): number => ((err as NodeJS.ErrnoException).code === 'EPIPE' ? EXIT_READER_GONE : 1);

/** How long a process asked to stop waits for its stdout and stderr, as it waits for its last log lines. */
export const STOPPED_OUTPUT_WAIT_MS = 1000;
