// The control plane's data dir at start: created owner-only when missing, refused when it is not a directory,
// and a warning (never a silent chmod) when others may read it.
import { chmodSync, existsSync, statSync } from 'node:fs';
import { TesseraError } from '../../../common/errors.js';
import { makeDirsSync } from '../../../shared-io/make-dirs.js';
import { errnoReason } from '../../../shared-io/read-named-file.js';

export interface DataDirLogger {
  warn(obj: object, msg: string): void;
}

export function prepareDataDir(dir: string, log: DataDirLogger): void {
  try {
    if (!existsSync(dir)) {
      makeDirsSync(dir, 0o700);
      chmodSync(dir, 0o700);
      return;
    }
    const st = statSync(dir);
    if (!st.isDirectory()) throw new TesseraError('TESSERA_ERR_CP_DATA_DIR', `${dir}: not a directory`, { file: dir });
    // Not changed behind the operator's back (it may be a shared directory); what is secret in it is 0600/0700.
    // Said only to whoever can act on it: the directory's owner. A Kubernetes emptyDir is 0777 and root's, with no
    // field to change it, so a warning there at every start would be noise that teaches operators to ignore them.
    const own = process.getuid?.() === st.uid;
    if ((st.mode & 0o077) !== 0 && own) log.warn({ dataDir: dir, mode: (st.mode & 0o777).toString(8) }, 'the data dir is readable by others; 0700 is recommended');
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    throw new TesseraError('TESSERA_ERR_CP_DATA_DIR', `dataDir ${dir}: ${errnoReason(e, 'cannot be used')}`, { file: dir }, { cause: e });
  }
}
