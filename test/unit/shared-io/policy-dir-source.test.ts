// The one PolicyDirSource, as both sides use it, against a real directory and real fs.watch. The proxy's way
// (loadInitial, then start): a bad directory fails the start; add, change and delete a policy; a bad file keeps the
// whole previous set and is reported as file:line; fixing it applies; a ConfigMap `..data` swap is seen. The control
// plane's way (start only): the first set is announced, a missing or bad directory is reported and read again once
// it is fixed, ConfigMap-linked files count; sets are numbered and frozen; the injected timers drive the poll.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../common/errors.js';
import type { AuthorizationPolicy } from '../../../common/policy/policy-types.js';
import { MAX_POLICY_FILE_BYTES, PolicyDirSource, type PolicyFileError, type PolicySet } from '../../../shared-io/policy-dir-source.js';
import { FakeTime } from '../../helpers/fake-time.js';
import { until } from '../../helpers/until.js';

const FAST = { pollMs: 100, debounceMs: 20 };

function policyYaml(name: string, action = 'ALLOW', caller = 'web'): string {
  return [
    'apiVersion: tessera.dev/v1',
    'kind: AuthorizationPolicy',
    `metadata: { name: ${name} }`,
    'spec:',
    '  selector: spiffe://example.org/ns/default/sa/api',
    `  action: ${action}`,
    '  rules:',
    `    - from: [spiffe://example.org/ns/default/sa/${caller}]`,
    '',
  ].join('\n');
}

/** Line 6 holds an action the schema does not know. */
const BAD = policyYaml('broken', 'PERMIT');

const names = (ps: readonly AuthorizationPolicy[] | undefined) => (ps ?? []).map((p) => p.name).sort();

let dir: string;
let sources: PolicyDirSource[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-policies-'));
  sources = [];
});
afterEach(() => {
  for (const s of sources) s.stop();
  rmSync(dir, { recursive: true, force: true });
});

function makeSource(policiesDir = dir, timing: { pollMs: number; debounceMs: number; timers?: FakeTime } = FAST) {
  const sets: (readonly AuthorizationPolicy[])[] = [];
  const numbered: PolicySet[] = [];
  const errors: (readonly PolicyFileError[])[] = [];
  const onPolicies = (p: readonly AuthorizationPolicy[], set: PolicySet) => {
    sets.push(p);
    numbered.push(set);
  };
  const source = new PolicyDirSource({ dir: policiesDir, onPolicies, onErrors: (e) => errors.push(e), ...timing });
  sources.push(source);
  return { source, sets, numbered, errors };
}

/** The proxy's start: `files` written, loaded (throwing on a bad one), then watched. */
function startedOn(files: Record<string, string>) {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const made = makeSource();
  made.source.loadInitial();
  made.source.start();
  return made;
}

/** dir/<file> -> ..data/<file>, dir/..data -> ..<generation>, as the kubelet lays a ConfigMap volume out. */
function configMapGeneration(root: string, generation: string, files: Record<string, string>): void {
  const gen = join(root, generation);
  mkdirSync(gen);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(gen, name), text);
  symlinkSync(generation, join(root, '..data_tmp'));
  renameSync(join(root, '..data_tmp'), join(root, '..data'));
  for (const name of Object.keys(files)) {
    try {
      symlinkSync(join('..data', name), join(root, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // else linked by an earlier generation
    }
  }
}

describe('PolicyDirSource, the proxy way: loadInitial then start', () => {
  test('loads *.yaml and *.yml, skipping dotfiles and other files', () => {
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    writeFileSync(join(dir, 'b.yml'), policyYaml('b'));
    writeFileSync(join(dir, '.hidden.yaml'), BAD);
    writeFileSync(join(dir, 'notes.txt'), BAD);
    mkdirSync(join(dir, 'sub.yaml'));
    const { source } = makeSource();
    const loaded = source.loadInitial();
    expect(names(loaded)).toEqual(['a', 'b']);
    expect(loaded.find((p) => p.name === 'a')?.source).toEqual({ file: join(dir, 'a.yaml'), line: 1 });
  });

  test('a bad file at start throws a TesseraError naming file:line', () => {
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    writeFileSync(join(dir, 'bad.yaml'), BAD);
    const { source } = makeSource();
    try {
      source.loadInitial();
      expect.unreachable('loaded');
    } catch (e) {
      expect(e).toBeInstanceOf(TesseraError);
      expect((e as TesseraError).code).toBe('TESSERA_ERR_POLICY_INVALID');
      expect((e as Error).message).toContain(`${join(dir, 'bad.yaml')}:6:`);
      expect((e as TesseraError).details).toMatchObject({ file: join(dir, 'bad.yaml'), line: 6 });
    }
    expect(source.policies).toBeUndefined();
  });

  test('a link out of the directory is not read (nor quoted), a ConfigMap link inside it is; a file past 1 MiB is not parsed', () => {
    const outside = mkdtempSync(join(tmpdir(), 'tessera-outside-'));
    try {
      writeFileSync(join(outside, 'secret'), 'root:$6$hash:19000:0:99999:7:::\n');
      symlinkSync(join(outside, 'secret'), join(dir, 'shadow.yaml'));
      configMapGeneration(dir, '..2026_12_05', { 'a.yaml': policyYaml('a') });
      const { source } = makeSource();
      try {
        source.loadInitial();
        expect.unreachable('loaded');
      } catch (e) {
        expect((e as TesseraError).code).toBe('TESSERA_ERR_POLICY_INVALID');
        expect((e as Error).message).toContain('links out of the policies directory');
        expect((e as Error).message).not.toContain('$6$');
      }
      rmSync(join(dir, 'shadow.yaml'));
      writeFileSync(join(dir, 'huge.yaml'), `# ${'x'.repeat(MAX_POLICY_FILE_BYTES)}\n`);
      expect(() => makeSource().source.loadInitial()).toThrow(/over 1048576 bytes/);
      rmSync(join(dir, 'huge.yaml'));
      expect(names(makeSource().source.loadInitial())).toEqual(['a']);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  test('links out to a directory, a device or a FIFO are errors, never read (no hang, no endless read); a FIFO inside is skipped', () => {
    const outside = mkdtempSync(join(tmpdir(), 'tessera-outside-'));
    try {
      execFileSync('mkfifo', [join(outside, 'fifo')]);
      execFileSync('mkfifo', [join(dir, 'inside-fifo.yaml')]);
      writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
      for (const [name, target] of [['dir.yaml', outside], ['zero.yaml', '/dev/zero'], ['fifo.yaml', join(outside, 'fifo')], ['rel.yaml', `..${sep}${outside.split(sep).pop()}${sep}fifo`]] as const) {
        symlinkSync(target, join(dir, name));
        try {
          makeSource().source.loadInitial();
          expect.unreachable(`${name} loaded`);
        } catch (e) {
          expect((e as Error).message, name).toContain('links out of the policies directory');
        }
        rmSync(join(dir, name));
      }
      expect(names(makeSource().source.loadInitial())).toEqual(['a']);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  test('a missing directory at start is a clear error', () => {
    const { source } = makeSource(join(dir, 'nope'));
    expect(() => source.loadInitial()).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_UNREADABLE' }));
  });

  test('add, change and delete a policy: each new set is reported once', async () => {
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    const { source, sets, errors } = makeSource();
    expect(names(source.loadInitial())).toEqual(['a']);
    source.start();

    writeFileSync(join(dir, 'b.yaml'), policyYaml('b'));
    await until('the set with b', () => sets.length === 1, 5_000, 10);
    expect(names(sets[0])).toEqual(['a', 'b']);

    writeFileSync(join(dir, 'b.yaml'), policyYaml('b', 'DENY'));
    await until('the changed b', () => sets.length === 2, 5_000, 10);
    expect(sets[1]!.find((p) => p.name === 'b')?.action).toBe('DENY');

    rmSync(join(dir, 'a.yaml'));
    await until('the set without a', () => sets.length === 3, 5_000, 10);
    expect(names(sets[2])).toEqual(['b']);
    expect(names(source.policies)).toEqual(['b']);

    // Rewriting identical content is no new set.
    writeFileSync(join(dir, 'b.yaml'), policyYaml('b', 'DENY'));
    await new Promise((r) => setTimeout(r, 3 * FAST.pollMs));
    expect(sets).toHaveLength(3);
    expect(errors).toEqual([]);
  });

  test('a bad file keeps the whole previous set and reports file:line; fixing it applies', async () => {
    const { source, sets, errors } = startedOn({ 'a.yaml': policyYaml('a') });

    // One good change and one bad file together: all or nothing, so neither is applied.
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a', 'DENY'));
    writeFileSync(join(dir, 'bad.yaml'), BAD);
    await until('the error report', () => errors.length > 0 && errors.at(-1)!.some((e) => e.file.endsWith('bad.yaml')), 5_000, 10);
    expect(errors.at(-1)).toEqual([
      expect.objectContaining({ file: join(dir, 'bad.yaml'), line: 6, code: 'TESSERA_ERR_POLICY_INVALID', message: expect.stringContaining('bad.yaml:6:') }),
    ]);
    expect(sets).toEqual([]);
    expect(names(source.policies)).toEqual(['a']);
    expect(source.policies![0]!.action).toBe('ALLOW');
    expect(source.lastErrors).toHaveLength(1);

    writeFileSync(join(dir, 'bad.yaml'), policyYaml('fixed'));
    await until('the fixed set', () => sets.length === 1, 5_000, 10);
    expect(names(sets[0])).toEqual(['a', 'fixed']);
    expect(sets[0]!.find((p) => p.name === 'a')?.action).toBe('DENY');
    expect(source.lastErrors).toEqual([]);
  });

  test('a duplicate name across files is refused naming both files', async () => {
    const { sets, errors } = startedOn({ 'a.yaml': policyYaml('a') });
    writeFileSync(join(dir, 'b.yaml'), policyYaml('a', 'DENY'));
    await until('the error report', () => errors.length > 0, 5_000, 10);
    expect(errors.at(-1)![0]).toMatchObject({ file: join(dir, 'b.yaml'), code: 'TESSERA_ERR_POLICY_DUPLICATE_NAME' });
    expect(errors.at(-1)![0]!.message).toContain(join(dir, 'a.yaml'));
    expect(sets).toEqual([]);
  });

  test('a ConfigMap volume `..data` swap is seen by fs.watch alone', async () => {
    configMapGeneration(dir, '..2026_01_01_00_00_00.1', { 'p.yaml': policyYaml('p') });
    const { source, sets } = makeSource(dir, { pollMs: 60_000, debounceMs: 20 });
    expect(names(source.loadInitial())).toEqual(['p']);
    source.start();

    configMapGeneration(dir, '..2026_01_01_00_10_00.2', { 'p.yaml': policyYaml('p', 'DENY') });
    rmSync(join(dir, '..2026_01_01_00_00_00.1'), { recursive: true });
    await until('the swapped-in set', () => sets.length === 1, 5_000, 10);
    expect(sets[0]!.map((p) => p.action)).toEqual(['DENY']);
  });
});

describe('PolicyDirSource, the control plane way: start only', () => {
  test('start announces the first set as set 1 (an empty directory is an empty set), later sets count up', async () => {
    const { source, sets, numbered, errors } = makeSource();
    source.start();
    expect(sets).toEqual([[]]);
    expect(numbered[0]!.version).toBe(1);
    expect(source.current).toBe(numbered[0]);

    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    await until('set 2', () => numbered.length === 2, 5_000, 10);
    expect(numbered[1]!.version).toBe(2);
    expect(names(numbered[1]!.policies)).toEqual(['a']);
    // Immutable: a reader holding set 2 never sees it change, and nobody can edit the set in force.
    expect(Object.isFrozen(numbered[1])).toBe(true);
    expect(Object.isFrozen(numbered[1]!.policies)).toBe(true);
    expect(errors).toEqual([]);
  });

  test('after loadInitial, start announces nothing for the same set', () => {
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    const { source, sets } = makeSource();
    source.loadInitial();
    source.start();
    expect(sets).toEqual([]);
    expect(source.current?.version).toBe(1);
  });

  test('a missing directory is reported, not thrown, and read once it appears', async () => {
    const late = join(dir, 'policies');
    const { source, sets, errors } = makeSource(late);
    expect(() => source.start()).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toMatchObject({ file: late, code: 'TESSERA_ERR_CONFIG_UNREADABLE', message: expect.stringContaining('ENOENT') });
    // A directory has no line: none is given (a 0 leaked into the log as "line":0).
    expect(errors[0]![0]).not.toHaveProperty('line');
    expect(source.policies).toBeUndefined();
    expect(source.lastErrors).toHaveLength(1);

    mkdirSync(late);
    writeFileSync(join(late, 'a.yaml'), policyYaml('a'));
    await until('the set of the new directory', () => sets.length === 1, 5_000, 10);
    expect(names(sets[0])).toEqual(['a']);
    expect(source.lastErrors).toEqual([]);
  });

  test('a bad file at start is reported with its code and line; no set is in force until it is fixed', async () => {
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    writeFileSync(join(dir, 'bad.yaml'), BAD);
    const { source, sets, errors } = makeSource();
    source.start();
    expect(errors.at(-1)).toEqual([expect.objectContaining({ file: join(dir, 'bad.yaml'), line: 6, code: 'TESSERA_ERR_POLICY_INVALID' })]);
    expect(source.current).toBeUndefined();

    rmSync(join(dir, 'bad.yaml'));
    await until('the set without the bad file', () => sets.length === 1, 5_000, 10);
    expect(names(sets[0])).toEqual(['a']);
    expect(source.current?.version).toBe(1);
  });

  test('files linked into a ConfigMap `..data` directory are policies too', () => {
    configMapGeneration(dir, '..2026_01_01_00_00_00.1', { 'a.yaml': policyYaml('a'), 'b.yml': policyYaml('b') });
    const { source, sets } = makeSource();
    source.start();
    expect(names(sets[0])).toEqual(['a', 'b']);
  });

  test('a load that succeeds after a refused one is announced even when the set is the same', async () => {
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    const { source, numbered, errors } = makeSource();
    source.start();
    writeFileSync(join(dir, 'bad.yaml'), BAD);
    await until('the refusal', () => errors.length === 1, 5_000, 10);
    rmSync(join(dir, 'bad.yaml'));
    await until('the recovery', () => numbered.length === 2, 5_000, 10);
    expect(names(numbered[1]!.policies)).toEqual(['a']);
    expect(numbered.map((n) => n.version)).toEqual([1, 2]);
    expect(source.lastErrors).toEqual([]);
  });

  test('the injected timers drive the watcher: a change is read when they fire', async () => {
    const time = new FakeTime();
    const { source, sets } = makeSource(dir, { pollMs: 1_000, debounceMs: 50, timers: time });
    source.start();
    expect(sets).toHaveLength(1);
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    // Real time passes (fs.watch reports the write) but the injected time stands still: nothing is read yet.
    await new Promise((r) => setTimeout(r, 300));
    expect(sets).toHaveLength(1);
    time.advance(1_000);
    expect(names(sets.at(-1))).toEqual(['a']);
    source.stop();
    expect(time.pending).toBe(0);
  });
});
