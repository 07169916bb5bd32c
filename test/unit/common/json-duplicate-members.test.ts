// repeatedJsonMember, the check behind refusing JWTs whose header or claims repeat a member (audit 54b I1): names
// compared after unescaping, at any depth, per object; strings that merely look like members ignored; deep
// nesting costs no stack. Compared with a plainly written recursive parser over generated JSON texts.
import { expect, test } from 'vitest';
import { repeatedJsonMember } from '../../../common/json-duplicate-members.js';

test.each([
  ['{"a":1,"a":2}', 'a'],
  ['{"a":1,"\\u0061":2}', 'a'],
  ['{"\\"":1,"\\u0022":2}', '"'],
  ['{"\\\\":1,"\\u005c":2}', '\\'],
  ['{"\\ud83d\\ude00":1,"😀":2}', '😀'],
  ['{"x":{"y":[1,{"b":true,"b":null}]}}', 'b'],
  [' { "a" : 1 , "b" : [ ] , "a" : { } } ', 'a'],
  ['[{"k":"v"},{"k":"v","k":"w"}]', 'k'],
  ['{"":1,"":2}', ''],
])('%s repeats %j', (text, name) => {
  expect(() => JSON.parse(text)).not.toThrow();
  expect(repeatedJsonMember(text)).toBe(name);
});

test.each([
  '{}',
  '[]',
  '"a"',
  '{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}',
  '{"a":"\\"a\\":1","b":"}{,[\\\\"}',
  '{"a":1,"A":2}',
  '{"a\\\\":1,"a":2}',
  '{"x":[1,2,"a","a"]}',
  '{"a":{},"b":[],"c":[[{}]]}',
])('%s repeats nothing', (text) => {
  expect(() => JSON.parse(text)).not.toThrow();
  expect(repeatedJsonMember(text)).toBeUndefined();
});

test('100,000 levels of nesting are scanned without a stack overflow', () => {
  const deep = `${'{"a":['.repeat(100_000)}{"n":1,"n":2}${']}'.repeat(100_000)}`;
  expect(repeatedJsonMember(deep)).toBe('n');
});

test('agrees with a reference parser on 2,000 generated texts', () => {
  // A small deterministic generator: names from a tiny alphabet, some escaped, so repetitions are frequent.
  let seed = 42;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const name = () => ['a', 'b', '\\u0061', 'a\\/', 'a/', '\\"'][next(6)]!;
  const value = (depth: number): string => {
    const k = depth > 3 ? next(3) : next(5);
    if (k === 0) return String(next(100));
    if (k === 1) return `"${name()}"`;
    if (k === 2) return 'null';
    if (k === 3) return `[${Array.from({ length: next(3) }, () => value(depth + 1)).join(',')}]`;
    return `{${Array.from({ length: next(4) }, () => `"${name()}":${value(depth + 1)}`).join(',')}}`;
  };
  for (let i = 0; i < 2000; i++) {
    const text = value(0);
    expect(() => JSON.parse(text)).not.toThrow();
    expect(repeatedJsonMember(text) !== undefined, text).toBe(referenceRepeats(text));
  }
});

/** Reference: a recursive descent parser written plainly (a different method from the scanner's). */
function referenceRepeats(text: string): boolean {
  let i = 0;
  let found = false;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const val = (): void => {
    ws();
    if (text[i] === '{') {
      i++;
      const names: string[] = [];
      ws();
      while (text[i] !== '}') {
        ws();
        const n = str();
        if (names.includes(n)) found = true;
        names.push(n);
        ws();
        i++; // ':'
        val();
        ws();
        if (text[i] === ',') i++;
      }
      i++;
    } else if (text[i] === '[') {
      i++;
      ws();
      while (text[i] !== ']') {
        val();
        ws();
        if (text[i] === ',') i++;
      }
      i++;
    } else if (text[i] === '"') str();
    else while (i < text.length && !/[,\]}\s]/.test(text[i]!)) i++;
  };
  val();
  return found;
}
