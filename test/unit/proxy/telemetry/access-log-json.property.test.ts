// Property of the access log's JSON string writer (paths, methods and ids come from callers): for text of every
// kind it writes exactly what JSON.stringify writes.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { jsonString } from '../../../../proxy/src/telemetry/access-log.js';
import { fuzzParams } from '../../../helpers/fuzz-params.js';

describe('access-log JSON strings', () => {
  test('jsonString writes exactly what JSON.stringify writes, for text of every kind', () => {
    // Characters from each class JSON treats differently: plain ASCII, the two it escapes by name, C0 controls,
    // DEL and C1 (not escaped), non-ASCII, U+2028/9, and surrogates alone or paired.
    const unit = fc.oneof(
      fc.constantFrom('a', 'Z', '/', '-', ':', ' ', '"', '\\', '\u007f', '\u0085', '\u00e9', '\u2028', '\u2029', '\uffff', '\ud83d', '\ude00', '\ud83d\ude00'),
      fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    );
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 40 }), (units) => {
        const v = units.join('');
        expect(jsonString(v)).toBe(JSON.stringify(v));
      }),
      fuzzParams(0x15a7, 3000),
    );
  });
});
