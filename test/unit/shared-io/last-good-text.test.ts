// LastGoodText: a file read again at each use, whose last good content stays when a read fails or finds it empty.
import { describe, expect, test } from 'vitest';
import { LastGoodText } from '../../../shared-io/last-good-text.js';

describe('LastGoodText', () => {
  test('each read returns what the file holds now', () => {
    let content = 'ca-1';
    const t = new LastGoodText('ca-0', () => content);
    expect(t.read()).toBe('ca-1');
    content = 'ca-2';
    expect(t.read()).toBe('ca-2');
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
});
