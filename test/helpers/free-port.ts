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
