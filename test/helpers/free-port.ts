// A loopback TCP port that was free a moment ago, for a process that must come back on the same port after a
// restart (port 0 would give it another one). Ports are chosen below the kernel's ephemeral range (where
// `tessera up` moves ports, cli/up/ports.ts): a port from listen(0) is in that range, where any outgoing connection
// of a parallel test may take it as its source port before the part binds it (a CI run lost a control-plane
// replica's start to EADDRINUSE that way).
import { createServer } from 'node:net';
import { MOVED_LOW, movedHigh } from '../../cli/up/ports.js';

function tryListenOn(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * Vitest's files run in several workers at once, each picking ports here: a port one worker found free could be
 * taken by another's pick before its part bound it (a CI run lost `tessera up`'s app to EADDRINUSE that way). Each
 * worker (VITEST_POOL_ID, 1 … maxWorkers) picks from its own eighth of the range; a run outside vitest, from all of it.
 */
const SLICES = 8;
function pickRange(high: number): { low: number; size: number } {
  const pool = Number(process.env['VITEST_POOL_ID']);
  if (!Number.isInteger(pool) || pool < 1) return { low: MOVED_LOW, size: high - MOVED_LOW };
  const size = Math.floor((high - MOVED_LOW) / SLICES);
  return { low: MOVED_LOW + ((pool - 1) % SLICES) * size, size };
}

/** The first of `count` consecutive ports free on `host` right now, below the ephemeral range. */
export async function freeLowPorts(count: number, host = '127.0.0.1'): Promise<number> {
  const { low, size } = pickRange(movedHigh());
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * (size - count));
    let all = true;
    for (let i = 0; i < count && all; i++) all = await tryListenOn(base + i, host);
    if (all) return base;
  }
  throw new Error(`no ${count} consecutive free ports on ${host} below the ephemeral range`);
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return freeLowPorts(1, host);
}
