// audit.logMaxBytes (audit 53c F4): the size audit.log is cut at, 64 MiB unset, 0 to leave rotation to the operator;
// a value under 64 KiB (a handful of lines in two files) is refused at load naming the key and line.
import { expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';

const cp = (extra: string) => parseControlPlaneConfig(`trustDomain: a.test\ndataDir: ./d\n${extra}`, '/etc/tessera/cp.yaml');

test('audit.logMaxBytes: 64 MiB unset, 0 and 64 KiB taken, 1..65535 refused with file:line:key', () => {
  expect(cp('').audit.logMaxBytes).toBe(64 * 1024 * 1024);
  expect(cp('audit:\n  logMaxBytes: 0\n').audit.logMaxBytes).toBe(0);
  expect(cp('audit:\n  logMaxBytes: 65536\n').audit.logMaxBytes).toBe(65_536);
  for (const tiny of [1, 4096, 65_535]) {
    const e = (() => {
      try {
        return cp(`audit:\n  keep: 2d\n  logMaxBytes: ${tiny}\n`);
      } catch (err) {
        return err;
      }
    })();
    expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID'), String(tiny)).toBe(true);
    expect((e as Error).message).toContain(`/etc/tessera/cp.yaml:5: audit.logMaxBytes: ${tiny} is under 65536`);
  }
  expect(() => cp('audit:\n  logMaxBytes: -1\n')).toThrow();
  expect(() => cp('audit:\n  logMaxBytes: 1.5\n')).toThrow();
});
