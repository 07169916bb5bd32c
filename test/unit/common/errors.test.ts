import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ERROR_CATALOGUE, TesseraError, describeError, isTesseraError } from '../../../common/errors.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  test('every code follows TESSERA_ERR_<AREA>_<WHAT>', () => {
    for (const code of Object.keys(ERROR_CATALOGUE)) expect(code).toMatch(/^TESSERA_ERR_[A-Z0-9]+_[A-Z0-9_]+$/);
  });
  test('docs/errors.md lists exactly the catalogue, with the same meanings', () => {
    const documented = new Map<string, string>();
    for (const m of doc.matchAll(/^\| `(TESSERA_ERR_[A-Z0-9_]+)` \| (.*) \|$/gm)) documented.set(m[1]!, m[2]!.replaceAll('\\|', '|'));
    expect([...documented.keys()].sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
    for (const [code, meaning] of Object.entries(ERROR_CATALOGUE)) expect(documented.get(code), code).toBe(meaning);
  });
  test('TesseraError carries code, default message and frozen details', () => {
    const e = new TesseraError('TESSERA_ERR_SPIFFE_ID_EMPTY', undefined, { key: 'x' });
    expect(e.message).toBe(ERROR_CATALOGUE.TESSERA_ERR_SPIFFE_ID_EMPTY);
    expect(isTesseraError(e, 'TESSERA_ERR_SPIFFE_ID_EMPTY')).toBe(true);
    expect(isTesseraError(new Error('x'))).toBe(false);
    expect(Object.isFrozen(e.details)).toBe(true);
    expect(describeError(e)).toBe(`TESSERA_ERR_SPIFFE_ID_EMPTY: ${e.message}`);
  });
});
