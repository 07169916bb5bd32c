// A loopback TCP port that was free a moment ago, for a process that must come back on the same port after a
// restart (port 0 would give it another one).
import { type AddressInfo, createServer } from 'node:net';
import { MOVED_LOW, movedHigh, tryListen } from '../../cli/up/ports.js';

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

/**
 * The first of `count` consecutive free ports below the kernel's ephemeral range (where `tessera up` moves ports,
 * cli/up/ports.ts), for a part that binds them later (`tessera up` apps: replica i listens on appPort + i). A port
 * from listen(0) would be in the ephemeral range, where any outgoing connection may take it as its source port
 * before the part binds it.
 */
export async function freeLowPorts(count: number): Promise<number> {
  const high = movedHigh();
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = MOVED_LOW + Math.floor(Math.random() * (high - MOVED_LOW - count));
    let all = true;
    for (let i = 0; i < count && all; i++) all = (await tryListen(base + i)) === base + i;
    if (all) return base;
  }
  throw new Error(`no ${count} consecutive free ports below the ephemeral range`);
}
