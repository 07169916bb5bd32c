// The one policy-directory source (the proxy's authorization.policiesDir, the control plane's policies.dir): reads
// every *.yaml / *.yml file of a directory as one set through common/policy parsing, watches it with the one file
// watcher (ConfigMap `..data` swaps included), and swaps in a new numbered set only when every file is valid. A
// bad file keeps the whole previous set in force and is reported as file:line with its code.
import { closeSync, readdirSync, readlinkSync, realpathSync, type Stats, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { type ErrorCode, TesseraError } from '../common/errors.js';
import { parsePolicyFiles } from '../common/policy/parse-policy.js';
import type { AuthorizationPolicy } from '../common/policy/policy-types.js';
import { notUtf8 } from '../common/text/utf8-text.js';
import { openNonBlocking, readBytesAtMost } from './bounded-read.js';
import { type PathWatch, watchPaths } from './file-watch.js';
import { errnoReason } from './read-named-file.js';
import type { Timers } from './timers.js';

export interface PolicyFileError {
  readonly file: string;
  /** Absent for a fault of the file as a whole (unreadable, too large, a link out) or of the directory. */
  readonly line?: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/** One whole, valid set as it is in force; replaced as a unit, never edited. */
export interface PolicySet {
  /** 1 for the first set put in force, then one more for each set after it. */
  readonly version: number;
  /** Frozen. */
  readonly policies: readonly AuthorizationPolicy[];
}

export interface PolicyDirSourceOptions {
  readonly dir: string;
  /**
   * A new set: it differs from the set in force, or a load succeeded after a failed one (so whoever counted the
   * refusal also sees the recovery).
   */
  readonly onPolicies: (policies: readonly AuthorizationPolicy[], set: PolicySet) => void;
  /** A load failed; the previous set stays in force. */
  readonly onErrors: (errors: readonly PolicyFileError[]) => void;
  /** Poll fallback of the watcher (default 1 s): also how soon a directory that appears late is read. */
  readonly pollMs?: number;
  /** Quiet time after a file event before reading, so an editor's write-rename settles (default 50 ms). */
  readonly debounceMs?: number;
  readonly timers?: Timers;
}

/** One read of a policy directory: the whole set, or every problem found (never a part of the set). */
export type PolicyDirRead = { ok: true; policies: AuthorizationPolicy[] } | { ok: false; errors: PolicyFileError[] };

/** Policy files: *.yaml / *.yml, not dotfiles (which also skips a ConfigMap's `..data` and timestamped dirs). */
export const POLICY_FILE_NAME = /^[^.].*\.ya?ml$/;
/** A policy file is a few KiB; past this it is read as a mistake, not parsed. */
export const MAX_POLICY_FILE_BYTES = 1 << 20;

/**
 * What the path is when it is there but is no directory (a file, a device): readdir's ENOTDIR says "a parent of it
 * is not a directory", which is wrong for the path itself. Undefined for a directory, a missing path or another fault.
 */
export function notADirectory(dir: string): string | undefined {
  try {
    const st = statSync(dir);
    if (st.isDirectory()) return undefined;
    return st.isFile() ? 'a file, not a directory' : 'not a directory (a FIFO, a device or a socket)';
  } catch {
    return undefined;
  }
}

/** What makes two sets the same set (the parsed content, not the file bytes: a comment is no new set). */
const setKey = (ps: readonly AuthorizationPolicy[]) => JSON.stringify(ps.map((p) => [p.name, p.selector, p.action, p.mode, p.rules, p.source]));

export class PolicyDirSource {
  readonly #o: PolicyDirSourceOptions;
  readonly #dir: string;
  #set: PolicySet | undefined;
  #appliedKey: string | undefined;
  #lastErrors: readonly PolicyFileError[] = [];
  #watch: PathWatch | undefined;

  constructor(opts: PolicyDirSourceOptions) {
    this.#o = opts;
    this.#dir = resolve(opts.dir);
  }

  /** The set in force (undefined before the first good load). */
  get current(): PolicySet | undefined {
    return this.#set;
  }

  /** The policies in force (undefined before the first good load). */
  get policies(): readonly AuthorizationPolicy[] | undefined {
    return this.#set?.policies;
  }

  /** Problems of the latest load; empty when it succeeded. */
  get lastErrors(): readonly PolicyFileError[] {
    return this.#lastErrors;
  }

  /**
   * Synchronous first load for a process that must not start on a bad directory (the proxy): installs the set
   * without announcing it, or throws a TesseraError naming file:line of every bad file.
   */
  loadInitial(): readonly AuthorizationPolicy[] {
    const r = readPolicyDir(this.#dir);
    if (!r.ok) {
      this.#lastErrors = r.errors;
      const first = r.errors[0]!;
      const text = r.errors.map((e) => e.message).join('\n');
      throw new TesseraError(first.code, `cannot load the policies in ${this.#dir}:\n${text}`, { file: first.file, ...(first.line !== undefined ? { line: first.line } : {}), errors: r.errors });
    }
    return this.#install(r.policies).policies;
  }

  /**
   * Reads the directory now (announcing the set unless loadInitial installed the same one) and watches it; a
   * directory that is missing or bad now is reported through onErrors and read again when it changes.
   */
  start(): void {
    if (this.#watch) return;
    // Watch first: the watcher's baseline is taken now, so a change made while reading below is not lost.
    this.#watch = watchPaths({
      paths: [],
      dirs: [this.#dir],
      onChange: () => this.reload(),
      onError: (e) => this.#fail([{ file: this.#dir, code: 'TESSERA_ERR_CONFIG_UNREADABLE', message: `reload failed: ${(e as Error).message}` }]),
      ...(this.#o.timers ? { timers: this.#o.timers } : {}),
      ...(this.#o.pollMs !== undefined ? { pollMs: this.#o.pollMs } : {}),
      ...(this.#o.debounceMs !== undefined ? { debounceMs: this.#o.debounceMs } : {}),
    });
    this.reload();
  }

  stop(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** Loads now; returns whether a set was announced through onPolicies. */
  reload(): boolean {
    const r = readPolicyDir(this.#dir);
    if (!r.ok) {
      this.#fail(r.errors);
      return false;
    }
    const recovered = this.#lastErrors.length > 0;
    if (!recovered && setKey(r.policies) === this.#appliedKey) return false;
    const set = this.#install(r.policies);
    this.#o.onPolicies(set.policies, set);
    return true;
  }

  #install(policies: AuthorizationPolicy[]): PolicySet {
    // One assignment: a reader sees the old set or the new one, never a mix.
    const set: PolicySet = Object.freeze({ version: (this.#set?.version ?? 0) + 1, policies: Object.freeze(policies) });
    this.#set = set;
    this.#appliedKey = setKey(policies);
    this.#lastErrors = [];
    return set;
  }

  #fail(errors: PolicyFileError[]): void {
    this.#lastErrors = errors;
    this.#o.onErrors(errors);
  }
}

/** The path of what descriptor `fd` has open (Linux: /proc/self/fd); elsewhere the path resolved again. */
function openedPath(fd: number, path: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return realpathSync(path);
  }
}

/**
 * Reads the policy files of `dir` once, exactly as the watched source does (so `tessera policy check` judges the set
 * a proxy would load). `unreadableCode` is the code of a directory or file that cannot be read.
 */
export function readPolicyDir(dir: string, unreadableCode: 'TESSERA_ERR_CONFIG_UNREADABLE' | 'TESSERA_ERR_CLI_FILE_UNREADABLE' = 'TESSERA_ERR_CONFIG_UNREADABLE'): PolicyDirRead {
  const unreadable = (file: string, what: string, e: unknown): PolicyFileError => ({ file, code: unreadableCode, message: `${what}: ${errnoReason(e)}` });
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => POLICY_FILE_NAME.test(n))
      .sort();
  } catch (e) {
    const what = notADirectory(dir);
    if (what !== undefined) return { ok: false, errors: [{ file: dir, code: unreadableCode, message: `cannot read the policies directory ${dir}: ${what}` }] };
    return { ok: false, errors: [unreadable(dir, `cannot read the policies directory ${dir}`, e)] };
  }
  const files: { path: string; text: string }[] = [];
  const errors: PolicyFileError[] = [];
  let root: string;
  try {
    root = realpathSync(dir);
  } catch (e) {
    return { ok: false, errors: [unreadable(dir, `cannot read the policies directory ${dir}`, e)] };
  }
  for (const n of names) {
    const path = join(dir, n);
    let fd: number | undefined;
    try {
      // Opened once and judged by the descriptor, so nothing can be swapped between the check and the read. The
      // open follows links: ConfigMap volumes present each file as a link into `..data/`. What it reaches must be
      // inside the directory (a policy file is read whole and its keys are quoted in errors): a link out, to a file,
      // a directory or a device, is an error. Non-blocking, so a FIFO cannot hang the open.
      let stat: Stats;
      ({ fd, stat } = openNonBlocking(path));
      const real = openedPath(fd, path);
      if (!real.startsWith(`${root}${sep}`)) {
        errors.push({ file: path, code: 'TESSERA_ERR_POLICY_INVALID', message: `${path} links out of the policies directory (to ${real}); not read` });
        continue;
      }
      if (!stat.isFile()) continue;
      const bytes = readBytesAtMost(fd, MAX_POLICY_FILE_BYTES, stat.size);
      if (bytes === null) {
        errors.push({ file: path, code: 'TESSERA_ERR_POLICY_INVALID', message: `${path} is over ${MAX_POLICY_FILE_BYTES} bytes, the most a policy file may be` });
        continue;
      }
      // UTF-8 or refused, at the first byte that is not: read leniently, it would be judged with U+FFFD in it.
      const bad = notUtf8(bytes);
      if (bad) {
        errors.push({ file: path, line: bad.line, code: 'TESSERA_ERR_POLICY_INVALID', message: `${path}:${bad.line}:${bad.col}: ${bad.why}` });
        continue;
      }
      files.push({ path, text: bytes.toString('utf8') });
    } catch (e) {
      // Removed between the listing and the read: it is gone, as if it had not been listed.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      errors.push(unreadable(path, `cannot read the policy file ${path}`, e));
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  const parsed = parsePolicyFiles(files);
  for (const e of parsed.errors) {
    const line = Number(e.details['line'] ?? 0);
    errors.push({ file: String(e.details['file'] ?? ''), ...(line > 0 ? { line } : {}), code: e.code, message: e.message });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, policies: parsed.policies };
}
