// An h2c app that answers every stream with a head and then 64 bytes every 50 ms, with no content-length and no
// end: a stream through the mesh that only a cut can end (h2-cut-resets, h2-peer-keepalive).
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface TrickleH2App {
  readonly port: number;
  close(): Promise<void>;
}

export async function startTrickleH2App(): Promise<TrickleH2App> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    const timer = setInterval(() => {
      if (!stream.closed) stream.write(Buffer.alloc(64, 0x61));
    }, 50);
    stream.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
