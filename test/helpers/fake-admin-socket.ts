// A real HTTP server on <dir>/admin.sock that answers as a test says: a stand-in for a control plane that is
// stuck, hostile or broken, so the CLI's side of admin.sock is tested against real socket behaviour.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { join } from 'node:path';
import { makeTempDir } from './run.js';

export interface FakeAdminSocket {
  /** Every request received so far. */
  readonly requests: IncomingMessage[];
  /** Resolves once a request has arrived. */
  readonly firstRequest: Promise<IncomingMessage>;
  close(): Promise<void>;
}

export async function fakeAdminSocket(dataDir: string, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<FakeAdminSocket> {
  const requests: IncomingMessage[] = [];
  let arrived: (req: IncomingMessage) => void = () => undefined;
  const firstRequest = new Promise<IncomingMessage>((resolve) => {
    arrived = resolve;
  });
  const server: Server = createServer((req, res) => {
    requests.push(req);
    arrived(req);
    req.resume();
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(join(dataDir, 'admin.sock'), resolve));
  return {
    requests,
    firstRequest,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A fake admin.sock in a fresh temp data dir answering with `answer`; its close and the dir's removal go to `cleanups`. */
export async function servedAdminSocket(cleanups: (() => Promise<void>)[], answer: (res: ServerResponse) => void): Promise<{ dir: string; sock: FakeAdminSocket }> {
  const { dir, cleanup } = await makeTempDir();
  cleanups.push(cleanup);
  const sock = await fakeAdminSocket(dir, (_req, res) => answer(res));
  cleanups.push(() => sock.close());
  return { dir, sock };
}
