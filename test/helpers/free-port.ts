// A loopback TCP port that was free a moment ago, for a process that must come back on the same port after a
// restart (port 0 would give it another one).
import { type AddressInfo, createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive free ports below the kernel's ephemeral range (20000–31999), for a part that
 * binds them later (`tessera up` apps: replica i listens on appPort + i). A port from listen(0) would be in the
 * ephemeral range, where any outgoing connection may take it as its source port before the part binds it.
 */
export async function freeLowPorts(count: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let all = true;
    for (let i = 0; i < count && all; i++) all = await isFree(base + i, host);
    if (all) return base;
  }
  throw new Error(`no ${count} consecutive free ports below the ephemeral range`);
}
