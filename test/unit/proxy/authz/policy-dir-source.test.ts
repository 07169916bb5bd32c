// PolicyDirSource against a real directory and real fs.watch: add, change and delete a policy; a bad file keeps
// the whole previous set and is reported as file:line; fixing it applies; a ConfigMap `..data` swap is seen.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import type { AuthorizationPolicy } from '../../../../common/policy/policy-types.js';
import { type PolicyFileError, PolicyDirSource } from '../../../../proxy/src/authz/policy-dir-source.js';
import { until } from '../../../helpers/until.js';

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

function makeSource(policiesDir = dir, timing = FAST) {
  const sets: AuthorizationPolicy[][] = [];
  const errors: PolicyFileError[][] = [];
  const source = new PolicyDirSource({ dir: policiesDir, onPolicies: (p) => sets.push(p), onErrors: (e) => errors.push(e), ...timing });
  sources.push(source);
  return { source, sets, errors };
}

describe('PolicyDirSource', () => {
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
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    const { source, sets, errors } = makeSource();
    source.loadInitial();
    source.start();

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
    writeFileSync(join(dir, 'a.yaml'), policyYaml('a'));
    const { source, sets, errors } = makeSource();
    source.loadInitial();
    source.start();
    writeFileSync(join(dir, 'b.yaml'), policyYaml('a', 'DENY'));
    await until('the error report', () => errors.length > 0, 5_000, 10);
    expect(errors.at(-1)![0]).toMatchObject({ file: join(dir, 'b.yaml'), code: 'TESSERA_ERR_POLICY_DUPLICATE_NAME' });
    expect(errors.at(-1)![0]!.message).toContain(join(dir, 'a.yaml'));
    expect(sets).toEqual([]);
  });

  test('a ConfigMap volume `..data` swap is seen by fs.watch alone', async () => {
    // dir/p.yaml -> ..data/p.yaml, dir/..data -> ..2026_x, as the kubelet lays a ConfigMap out.
    const gen1 = join(dir, '..2026_01_01_00_00_00.1');
    mkdirSync(gen1);
    writeFileSync(join(gen1, 'p.yaml'), policyYaml('p'));
    symlinkSync('..2026_01_01_00_00_00.1', join(dir, '..data'));
    symlinkSync(join('..data', 'p.yaml'), join(dir, 'p.yaml'));
    const { source, sets } = makeSource(dir, { pollMs: 60_000, debounceMs: 20 });
    expect(names(source.loadInitial())).toEqual(['p']);
    source.start();

    const gen2 = join(dir, '..2026_01_01_00_10_00.2');
    mkdirSync(gen2);
    writeFileSync(join(gen2, 'p.yaml'), policyYaml('p', 'DENY'));
    symlinkSync('..2026_01_01_00_10_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(gen1, { recursive: true });
    await until('the swapped-in set', () => sets.length === 1, 5_000, 10);
    expect(sets[0]!.map((p) => p.action)).toEqual(['DENY']);
  });
});
