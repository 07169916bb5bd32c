// A listener worker's life as a process (`tessera proxy` with WORKER_ENV set): start on the primary's init, report
// a start-up failure to it before exiting, then serve until SIGTERM/SIGINT or until the primary is gone, and drain.
import { describeError, TesseraError } from '../../../common/errors.js';
import { startupError } from '../../../shared-io/startup-error.js';
import type { ProxyRuntime } from '../proxy-runtime.js';
import { parentChannel } from './worker-channel.js';
import { startWorker } from './worker-main.js';

/** Resolves with the exit code once drained; a start-up failure is sent to the primary, then thrown. */
export async function runWorkerProcess(slot: number, base: ProxyRuntime, stopSignal: Promise<NodeJS.Signals>): Promise<number> {
  const log = base.log.child({ worker: slot });
  const channel = parentChannel(process);
  const worker = await startWorker(channel, { ...base, log }).catch(async (e: unknown) => {
    const err = e instanceof TesseraError ? e : startupError(e, 'TESSERA_ERR_PROXY_START_FAILED');
    const code = (e as NodeJS.ErrnoException)?.code === 'EADDRINUSE' ? 'TESSERA_ERR_PROXY_LISTEN_FAILED' : err.code;
    await channel.send({ type: 'failed', code, message: err.message });
    throw err;
  });
  const why = await Promise.race([stopSignal, channel.disconnected.then(() => 'primary gone')]);
  log.info({ why }, 'worker draining');
  await worker.shutdown().catch((e: unknown) => log.error({ err: describeError(e) }, 'worker drain failed'));
  return 0;
}
