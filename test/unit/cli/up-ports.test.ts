// tessera up's port choice: a wanted port that is free is used; a taken one is moved below the kernel's ephemeral
// range (where no outgoing connection's source port can take it before the part binds it), never twice the same.
import { createServer, type Server } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { PortPicker } from '../../../cli/up/ports.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

const occupy = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    servers.push(s);
    s.listen({ port: 0, host: '127.0.0.1' }, () => resolve((s.address() as { port: number }).port));
  });

test('a taken port is moved below the ephemeral range, and each pick is a different port', async () => {
  const taken = await occupy();
  const picker = new PortPicker();
  const picks = [await picker.pick(taken), await picker.pick(taken), await picker.pick(0)];
  for (const p of picks) {
    expect(p).toBeGreaterThanOrEqual(20_000);
    expect(p).toBeLessThan(32_768);
  }
  expect(new Set(picks).size).toBe(3);
  expect(picker.moves.map((m) => m.wanted)).toEqual([taken, taken]);
});
