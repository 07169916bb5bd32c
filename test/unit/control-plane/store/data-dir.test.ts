// The data dir at start: created 0700 when missing, a file in its place refused with TESSERA_ERR_CP_DATA_DIR, and
// one others can read kept as it is with a warning (never chmod-ed behind the operator's back), given only to the
// directory's owner: a Kubernetes emptyDir (0777, root's) got it at every start with nothing anyone could do.
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { prepareDataDir } from '../../../../control-plane/src/store/data-dir.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

describe('prepareDataDir', () => {
  const tmp = tempDirPerTest();
  const warnings: object[] = [];
  const log = { warn: (o: object) => warnings.push(o) };

  test('a missing dir (and its parents) is created 0700, silently', () => {
    warnings.length = 0;
    const dir = join(tmp.dir, 'a', 'b');
    prepareDataDir(dir, log);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(warnings).toEqual([]);
  });

  test('a dir others can read is kept as it is, with a warning naming its mode', () => {
    warnings.length = 0;
    const dir = join(tmp.dir, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    prepareDataDir(dir, log);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(warnings).toEqual([{ dataDir: dir, mode: '755' }]);
  });

  test('a dir others can read that this process does not own (an emptyDir) gets no warning', (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip(); // making a directory someone else's needs root
    warnings.length = 0;
    const dir = join(tmp.dir, 'empty-dir');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    // Another uid's, as the kubelet's emptyDir is for the pod's non-root user.
    chownSync(dir, 65534, 65534);
    prepareDataDir(dir, log);
    expect(warnings).toEqual([]);
  });

  test('a file in its place is refused, naming it', () => {
    const file = join(tmp.dir, 'file');
    writeFileSync(file, '');
    try {
      prepareDataDir(file, log);
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e) && [e.code, e.details['file']]).toEqual(['TESSERA_ERR_CP_DATA_DIR', file]);
    }
  });
});
