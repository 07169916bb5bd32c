// Free loopback ports for processes whose configs need a number up front (nginx, HAProxy, Tessera).
import { createServer } from 'node:net';

function oneFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** `n` distinct ports that were free a moment ago (the kernel hands out ephemeral ports in sequence, not reused at once). */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  for (let i = 0; out.size < n && i < n * 10; i++) out.add(await oneFreePort());
  if (out.size < n) throw new Error('no free loopback ports');
  return [...out];
}
