// Runs the RSA key rules (common/pki/rsa-key-strength.ts) on one worker thread, so their BigInt arithmetic (~60 ms
// of CPU for a 4096-bit key, ~12 ms at 2048) never holds the event loop that serves issuance, Config/Watch and
// /healthz. One key at a time, so a peer's keys take one core at most; urgent keys (a CSR a caller waits on) go before
// background ones (federated bundles), so a CSR waits for at most the one key being judged. The thread starts with
// the first key, stops after idleMs without one (it holds ~12 MB) and starts again if it died; while it judges it
// keeps the process alive, idle it does not. The urgent queue is bounded (URGENT_QUEUE_MAX; beyond it a CSR is refused
// TESSERA_ERR_ISSUANCE_BUSY at once), and a queued key whose caller left is dropped, not judged (audit 40a F3).
import { Worker } from 'node:worker_threads';
import { TesseraError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';

interface Job {
  readonly spki: Buffer;
  readonly resolve: (weakness: string | null) => void;
  readonly reject: (e: Error) => void;
  /** True once the caller left: the job is dropped instead of judged. */
  readonly gone: (() => boolean) | undefined;
}

/** Urgent keys (CSRs) that may wait at once: 256 × ~60 ms ≈ 15 s, past the proxy's 10 s SignSvid deadline already. */
export const URGENT_QUEUE_MAX = 256;

export interface RsaKeyWorkerOptions {
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** The thread stops after this long without a key. */
  readonly idleMs?: number;
  /** The thread's script: the built one beside this file unless given (a unit test of the source names dist/'s). */
  readonly script?: URL;
}

const IDLE_MS = 60_000;

export class RsaKeyWorker {
  readonly #o: RsaKeyWorkerOptions;
  readonly #script: URL;
  readonly #urgent: Job[] = [];
  readonly #background: Job[] = [];
  #thread: Worker | undefined;
  #busy: Job | undefined;
  #idle: unknown;
  #closed = false;
  #started = 0;

  constructor(o: RsaKeyWorkerOptions) {
    this.#o = o;
    this.#script = o.script ?? new URL('./rsa-key-worker-thread.js', import.meta.url);
  }

  /** Threads started so far (tests: an idle stop and a restart). */
  get started(): number {
    return this.#started;
  }

  /** Why this RSA key (SPKI DER) must not be certified, or null (common/pki/rsa-key-verdicts.ts's RsaJudge). */
  readonly judge = (spkiDer: Buffer, urgent: boolean, gone?: () => boolean): Promise<string | null> =>
    new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('the RSA key check thread is closed'));
      if (urgent && this.#urgent.length >= URGENT_QUEUE_MAX) this.#dropGone(this.#urgent);
      if (urgent && this.#urgent.length >= URGENT_QUEUE_MAX) return reject(new TesseraError('TESSERA_ERR_ISSUANCE_BUSY'));
      (urgent ? this.#urgent : this.#background).push({ spki: spkiDer, resolve, reject, gone });
      this.#next();
    });

  /** Refuses the queued jobs whose caller left. */
  #dropGone(queue: Job[]): void {
    const kept = queue.filter((job) => !job.gone?.());
    for (const job of queue) if (job.gone?.()) job.reject(new TesseraError('TESSERA_ERR_ISSUANCE_CALLER_GONE'));
    queue.splice(0, queue.length, ...kept);
  }

  /** Refuses what is queued and stops the thread. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#o.timers.clearTimeout(this.#idle);
    const gone = new Error('the RSA key check thread is closed');
    for (const job of [...this.#urgent.splice(0), ...this.#background.splice(0)]) job.reject(gone);
    this.#fail(gone);
    await this.#stop();
  }

  #next(): void {
    if (this.#busy || this.#closed) return;
    let job = this.#urgent.shift() ?? this.#background.shift();
    while (job?.gone?.()) {
      job.reject(new TesseraError('TESSERA_ERR_ISSUANCE_CALLER_GONE'));
      job = this.#urgent.shift() ?? this.#background.shift();
    }
    this.#o.timers.clearTimeout(this.#idle);
    if (!job) {
      this.#idle = this.#o.timers.setTimeout(() => void this.#stop(), this.#o.idleMs ?? IDLE_MS);
      return;
    }
    const thread = this.#thread ?? this.#start();
    this.#busy = job;
    thread.ref();
    thread.postMessage(job.spki);
  }

  #start(): Worker {
    const thread = new Worker(this.#script);
    this.#started++;
    thread.on('message', (m: { weakness?: string | null; error?: string }) => {
      const job = this.#busy;
      this.#busy = undefined;
      thread.unref();
      if (m.error !== undefined) job?.reject(new Error(`the RSA key check failed: ${m.error}`));
      else job?.resolve(m.weakness ?? null);
      this.#next();
    });
    const lost = (e: Error) => {
      if (this.#thread !== thread) return;
      this.#thread = undefined;
      this.#fail(e);
      this.#next();
    };
    thread.on('error', lost);
    thread.on('exit', (code) => lost(new Error(`the RSA key check thread exited (${code})`)));
    this.#thread = thread;
    return thread;
  }

  #fail(e: Error): void {
    const job = this.#busy;
    this.#busy = undefined;
    job?.reject(e);
  }

  async #stop(): Promise<void> {
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.terminate();
  }
}
