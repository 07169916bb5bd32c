// Watches policies.dir: on every change reads all *.yaml / *.yml files, parses them as one set, and swaps the
// set in only when every file is valid. A bad file is reported (file, line, reason) and the last good set stays.
import { type FSWatcher, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { TesseraError } from '../../../common/errors.js';
import { parsePolicyFiles } from '../../../common/policy/parse-policy.js';
import type { AuthorizationPolicy } from '../../../common/policy/policy-types.js';

export interface PolicyLoadError {
  readonly file: string;
  readonly line: number;
  readonly code: string;
  readonly message: string;
}

export interface PolicyDirSourceOptions {
  readonly dir: string;
  /** A new valid set (called only when it differs from the previous one). */
  readonly onPolicies: (policies: readonly AuthorizationPolicy[]) => void;
  /** A load that failed; the previous set stays in force. */
  readonly onErrors: (errors: readonly PolicyLoadError[]) => void;
  /** Fallback rescan period in case a file-system event is missed (default 1 s). */
  readonly pollMs?: number;
  /** Quiet time after an event before reading, so an editor's write-rename settles (default 50 ms). */
  readonly debounceMs?: number;
}

const POLICY_FILE = /^[^.].*\.ya?ml$/;

export class PolicyDirSource {
  readonly #o: PolicyDirSourceOptions;
  #policies: readonly AuthorizationPolicy[] = [];
  #lastErrors: readonly PolicyLoadError[] = [];
  #lastGoodKey = '';
  #signature = '';
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;

  constructor(opts: PolicyDirSourceOptions) {
    this.#o = opts;
  }

  get policies(): readonly AuthorizationPolicy[] {
    return this.#policies;
  }

  /** Problems of the latest load (empty when it succeeded). */
  get lastErrors(): readonly PolicyLoadError[] {
    return this.#lastErrors;
  }

  /** Loads once (synchronously), then watches. */
  start(): void {
    this.reload();
    this.#watch();
    this.#poll = setInterval(() => {
      if (!this.#watcher) this.#watch();
      if (this.#dirSignature() !== this.#signature) this.reload();
    }, this.#o.pollMs ?? 1_000);
    this.#poll.unref();
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }

  /** Reads the directory now; returns whether a new set was installed. */
  reload(): boolean {
    this.#signature = this.#dirSignature();
    let files: { path: string; text: string }[];
    try {
      files = this.#files().map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    } catch (e) {
      return this.#fail([{ file: this.#o.dir, line: 0, code: 'TESSERA_ERR_CONFIG_UNREADABLE', message: `cannot read the policies dir: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
    }
    const { policies, errors } = parsePolicyFiles(files);
    if (errors.length > 0) {
      return this.#fail(
        errors.map((e: TesseraError) => ({
          file: String(e.details['file'] ?? ''),
          line: Number(e.details['line'] ?? 0),
          code: e.code,
          message: e.message,
        })),
      );
    }
    this.#lastErrors = [];
    const key = JSON.stringify(policies.map((p) => [p.name, p.selector, p.action, p.mode, p.rules, p.source]));
    if (key === this.#lastGoodKey) return false;
    this.#lastGoodKey = key;
    this.#policies = Object.freeze([...policies]);
    this.#o.onPolicies(this.#policies);
    return true;
  }

  #fail(errors: PolicyLoadError[]): false {
    this.#lastErrors = errors;
    this.#o.onErrors(errors);
    return false;
  }

  #files(): string[] {
    return readdirSync(this.#o.dir, { withFileTypes: true })
      .filter((d) => d.isFile() && POLICY_FILE.test(d.name))
      .map((d) => join(this.#o.dir, d.name))
      .sort();
  }

  /** Names, sizes and modification times: a cheap way to notice a change an event did not report. */
  #dirSignature(): string {
    try {
      return this.#files()
        .map((f) => {
          const st = statSync(f);
          return `${f}:${st.size}:${st.mtimeMs}`;
        })
        .join('|');
    } catch {
      return 'unreadable';
    }
  }

  #watch(): void {
    try {
      this.#watcher = watch(this.#o.dir, () => {
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => this.reload(), this.#o.debounceMs ?? 50);
      });
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      this.#watcher = undefined; // the directory may appear later; the poll retries
    }
  }
}
