// Authorization policies from a directory (authorization.policiesDir, when there is no control plane): reads
// every *.yaml / *.yml file as one set, all or nothing — one bad file keeps the whole previous set in force and
// is reported as file:line. Watched with the generic file watcher, so ConfigMap `..data` swaps are seen too.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ErrorCode, TesseraError } from '../../../common/errors.js';
import { parsePolicyFiles } from '../../../common/policy/parse-policy.js';
import type { AuthorizationPolicy } from '../../../common/policy/policy-types.js';
import { type PathWatch, type WatchTimers, watchPaths } from '../config/file-watch.js';

export interface PolicyFileError {
  readonly file: string;
  readonly line: number;
  readonly code: ErrorCode;
  readonly message: string;
}

export interface PolicyDirSourceOptions {
  readonly dir: string;
  /** A new valid set: when it differs from the set in force, or when a load succeeds after a failed one. */
  readonly onPolicies: (policies: AuthorizationPolicy[]) => void;
  /** A load failed; the previous set stays in force. */
  readonly onErrors: (errors: PolicyFileError[]) => void;
  /** Poll fallback of the watcher (default 1 s). */
  readonly pollMs?: number;
  /** Quiet time after a file event before reading (default 50 ms). */
  readonly debounceMs?: number;
  readonly timers?: WatchTimers;
}

type LoadResult = { ok: true; policies: AuthorizationPolicy[] } | { ok: false; errors: PolicyFileError[] };

/** Policy files: *.yaml / *.yml, not dotfiles (which also skips a ConfigMap's `..data` and timestamped dirs). */
export const POLICY_FILE_NAME = /^[^.].*\.ya?ml$/;

const setKey = (ps: readonly AuthorizationPolicy[]) => JSON.stringify(ps.map((p) => [p.name, p.selector, p.action, p.mode, p.rules, p.source]));

export class PolicyDirSource {
  readonly #o: PolicyDirSourceOptions;
  readonly #dir: string;
  #policies: AuthorizationPolicy[] | undefined;
  #appliedKey: string | undefined;
  #lastErrors: PolicyFileError[] = [];
  #watch: PathWatch | undefined;

  constructor(opts: PolicyDirSourceOptions) {
    this.#o = opts;
    this.#dir = resolve(opts.dir);
  }

  /** The set in force (undefined before the first good load). */
  get policies(): readonly AuthorizationPolicy[] | undefined {
    return this.#policies;
  }

  /** Problems of the latest load; empty when it succeeded. */
  get lastErrors(): readonly PolicyFileError[] {
    return this.#lastErrors;
  }

  /** Synchronous first load; throws TesseraError naming file:line of every bad file so the proxy fails at start. */
  loadInitial(): AuthorizationPolicy[] {
    const r = this.#load();
    if (!r.ok) {
      this.#lastErrors = r.errors;
      const first = r.errors[0]!;
      const text = r.errors.map((e) => e.message).join('\n');
      throw new TesseraError(first.code, `cannot load the policies in ${this.#dir}:\n${text}`, { file: first.file, line: first.line, errors: r.errors });
    }
    this.#install(r.policies);
    return r.policies;
  }

  /** Watches the directory; a change is loaded whole and reported through onPolicies or onErrors. */
  start(): void {
    if (this.#watch) return;
    this.#watch = watchPaths({
      paths: [],
      dirs: [this.#dir],
      onChange: () => this.reload(),
      onError: (e) => this.#fail([{ file: this.#dir, line: 0, code: 'TESSERA_ERR_CONFIG_UNREADABLE', message: `reload failed: ${(e as Error).message}` }]),
      ...(this.#o.timers ? { timers: this.#o.timers } : {}),
      ...(this.#o.pollMs !== undefined ? { pollMs: this.#o.pollMs } : {}),
      ...(this.#o.debounceMs !== undefined ? { debounceMs: this.#o.debounceMs } : {}),
    });
    // Read once now: covers a start without loadInitial, and a change made between loadInitial and start
    // (the watcher's baseline is taken now); an unchanged set is a no-op.
    this.reload();
  }

  stop(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** Loads now; returns whether onPolicies was called. */
  reload(): boolean {
    const r = this.#load();
    if (!r.ok) {
      this.#fail(r.errors);
      return false;
    }
    const recovered = this.#lastErrors.length > 0;
    if (!recovered && setKey(r.policies) === this.#appliedKey) return false;
    this.#install(r.policies);
    this.#o.onPolicies(r.policies);
    return true;
  }

  #install(policies: AuthorizationPolicy[]): void {
    this.#policies = policies;
    this.#appliedKey = setKey(policies);
    this.#lastErrors = [];
  }

  #fail(errors: PolicyFileError[]): void {
    this.#lastErrors = errors;
    this.#o.onErrors(errors);
  }

  #load(): LoadResult {
    let names: string[];
    try {
      names = readdirSync(this.#dir).filter((n) => POLICY_FILE_NAME.test(n)).sort();
    } catch (e) {
      return { ok: false, errors: [unreadable(this.#dir, `cannot read the policies directory ${this.#dir}`, e)] };
    }
    const files: { path: string; text: string }[] = [];
    const errors: PolicyFileError[] = [];
    for (const n of names) {
      const path = join(this.#dir, n);
      try {
        // stat follows symlinks: ConfigMap volumes present each file as a link into `..data/`.
        if (!statSync(path).isFile()) continue;
        files.push({ path, text: readFileSync(path, 'utf8') });
      } catch (e) {
        // Removed between the listing and the read: it is gone, as if it had not been listed.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        errors.push(unreadable(path, `cannot read the policy file ${path}`, e));
      }
    }
    const parsed = parsePolicyFiles(files);
    for (const e of parsed.errors) {
      errors.push({ file: String(e.details['file'] ?? ''), line: Number(e.details['line'] ?? 0), code: e.code, message: e.message });
    }
    return errors.length > 0 ? { ok: false, errors } : { ok: true, policies: parsed.policies };
  }
}

function unreadable(file: string, what: string, e: unknown): PolicyFileError {
  const cause = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return { file, line: 0, code: 'TESSERA_ERR_CONFIG_UNREADABLE', message: `${what}: ${cause}` };
}
