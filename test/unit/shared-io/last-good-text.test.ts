// LastGoodText: a file read again at each use, whose last good content stays when a read fails or finds it empty;
// each change between good and failing reads is told once, with the cause (audit 56c F8: a CA file gone for good
// went unnoticed while the old one was used).
import { describe, expect, test } from 'vitest';
import { LastGoodText } from '../../../shared-io/last-good-text.js';

/** A LastGoodText over `next()`, and what it told. */
function watched(next: () => string) {
  const told: string[] = [];
  const t = new LastGoodText('ca-0', next, { stale: (cause) => told.push(`stale: ${cause}`), fresh: () => told.push('fresh') });
  return { t, told };
}

describe('LastGoodText', () => {
  test('each read returns what the file holds now; good reads tell nothing', () => {
    let content = 'ca-1';
    const { t, told } = watched(() => content);
    expect(t.read()).toBe('ca-1');
    content = 'ca-2';
    expect(t.read()).toBe('ca-2');
    expect(told).toEqual([]);
  });

  test('a failed read or an empty file (mid-swap) leaves the last good content in use', () => {
    let next: () => string = () => 'ca-1';
    const t = new LastGoodText('ca-0', () => next());
    expect(t.read()).toBe('ca-1');
    next = () => {
      throw new Error('ENOENT');
    };
    expect(t.read()).toBe('ca-1');
    next = () => ' \n';
    expect(t.read()).toBe('ca-1');
    next = () => 'ca-2';
    expect(t.read()).toBe('ca-2');
  });

  test('before any read, the content given at start', () => {
    const t = new LastGoodText('ca-0', () => {
      throw new Error('EACCES');
    });
    expect(t.read()).toBe('ca-0');
  });

  test('failing reads are told once with the first cause, not per call; the first good read after them once', () => {
    let next: () => string = () => {
      throw new Error('ENOENT: no such file');
    };
    const { t, told } = watched(() => next());
    for (let i = 0; i < 5; i++) expect(t.read()).toBe('ca-0');
    next = () => '';
    expect(t.read()).toBe('ca-0');
    expect(told).toEqual(['stale: ENOENT: no such file']);
    next = () => 'ca-1';
    expect(t.read()).toBe('ca-1');
    expect(t.read()).toBe('ca-1');
    expect(told).toEqual(['stale: ENOENT: no such file', 'fresh']);
    // Stale again, an empty file this time, then fresh again: each change told.
    next = () => ' \n';
    expect(t.read()).toBe('ca-1');
    expect(t.read()).toBe('ca-1');
    next = () => 'ca-2';
    expect(t.read()).toBe('ca-2');
    expect(told).toEqual(['stale: ENOENT: no such file', 'fresh', 'stale: the file is empty', 'fresh']);
  });
});
