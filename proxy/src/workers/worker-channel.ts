// A worker's end of the IPC channel to its primary (the process's own `send`/`message`/`disconnect`), typed
// with the worker protocol. A send resolves once Node has handed the message over, so a failing worker can
// report its error before it exits.
import { TesseraError } from '../../../common/errors.js';
import { WORKER_ENV } from './worker-env.js';
import type { FromWorker, ToWorker } from './worker-messages.js';

export interface WorkerChannel {
  send(m: FromWorker): Promise<void>;
  onMessage(fn: (m: ToWorker) => void): void;
  /** Resolves when the primary is gone (it exited or closed the channel): the worker then drains and exits. */
  readonly disconnected: Promise<void>;
}

type IpcProcess = Pick<NodeJS.Process, 'send' | 'on' | 'connected'>;

export function parentChannel(proc: IpcProcess): WorkerChannel {
  if (!proc.send) throw new TesseraError('TESSERA_ERR_PROXY_START_FAILED', `${WORKER_ENV} is set but there is no IPC channel to a primary`);
  const send = proc.send.bind(proc);
  return {
    send: (m) =>
      new Promise((resolve) => {
        if (!proc.connected) return resolve();
        send(m, undefined, {}, () => resolve());
      }),
    onMessage: (fn) => void proc.on('message', (m) => fn(m as ToWorker)),
    disconnected: new Promise((resolve) => {
      if (!proc.connected) resolve();
      else proc.on('disconnect', () => resolve());
    }),
  };
}
