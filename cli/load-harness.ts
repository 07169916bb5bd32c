// Loads the load and benchmark harness (bench/, autocannon) when `tessera load` or `tessera bench` runs. The
// container image leaves both out; there the command fails with a code and says why, not with a module error.
import { TesseraError } from '../common/errors.js';

export async function loadHarness<T>(command: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new TesseraError(
      'TESSERA_ERR_CLI_HARNESS_MISSING',
      `${command} needs the load harness and its optional dependency autocannon, which this installation leaves out (the container image does): run it from the repository or an npm install that keeps optional dependencies (${(e as Error).message.split('\n')[0]})`,
      {},
      { cause: e },
    );
  }
}
