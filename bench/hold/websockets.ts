// Idle WebSockets through the sidecar pair: N (default 1,000) `ws` clients → outbound listener → mTLS → inbound
// listener → a `ws` echo app, opened 32 at a time, then held idle. Reports the RSS of both proxies before and
// after (per connection), that every WebSocket still echoes after the hold, and the proxies'
// tessera_upgraded_connections. Not part of `npm test`:
// `node_modules/.bin/node dist/bench/hold/websockets.js [--connections 1000] [--hold 20s] [--json F]`.
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { TesseraError } from '../../common/errors.js';
import { startTesseraPair } from '../peers/topology.js';
import { type ProcSample, durationFlag, flag, openMany, sampleProcess, withHoldContext, writeJson } from './hold-common.js';

interface SideResult {
  readonly rssBeforeKb: number;
  readonly rssAfterKb: number;
  readonly rssAfterHoldKb: number;
  readonly rssPerConnectionKb: number;
  readonly fdsAfter: number;
  readonly upgradedConnections: number;
}

function gauge(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

function openWs(port: number): Promise<WebSocket | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    ws.once('open', () => resolve(ws));
    ws.once('error', () => resolve(null));
  });
}

function echoes(ws: WebSocket, text: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    ws.once('message', (m) => {
      clearTimeout(t);
      resolve(m.toString() === text);
    });
    ws.send(text);
  });
}

function side(before: ProcSample, after: ProcSample, held: ProcSample | null, opened: number, upgraded: number): SideResult {
  return {
    rssBeforeKb: before.rssKb,
    rssAfterKb: after.rssKb,
    rssAfterHoldKb: held?.rssKb ?? 0,
    rssPerConnectionKb: Number(((after.rssKb - before.rssKb) / Math.max(opened, 1)).toFixed(1)),
    fdsAfter: after.fds,
    upgradedConnections: upgraded,
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const count = Number(flag(argv, 'connections', '1000'));
  const holdMs = durationFlag(argv, 'hold', '20s');
  const out = flag(argv, 'json', '');
  await withHoldContext('websockets', async (ctx) => {
    const log = ctx.opts.log;
    const app = createServer((_req, res) => res.end('ok\n'));
    const wss = new WebSocketServer({ server: app });
    wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const pair = await startTesseraPair(ctx.env, (app.address() as AddressInfo).port);
    const sockets: WebSocket[] = [];
    try {
      const warm = await openWs(pair.entryPort);
      if (!warm || !(await echoes(warm, 'warm', 10_000))) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
      warm.close();
      await new Promise((r) => setTimeout(r, 1_000));
      const before = { client: sampleProcess(pair.client.pid)!, server: sampleProcess(pair.server.pid)! };
      const t0 = Date.now();
      const { failed } = await openMany(
        count,
        32,
        async () => {
          const ws = await openWs(pair.entryPort);
          if (ws) sockets.push(ws);
          return ws !== null;
        },
        ctx.opts.signal,
      );
      const openSeconds = (Date.now() - t0) / 1000;
      log(`${sockets.length}/${count} WebSockets open in ${openSeconds.toFixed(1)} s (${failed} failed)`);
      await new Promise((r) => setTimeout(r, 2_000));
      const after = { client: sampleProcess(pair.client.pid)!, server: sampleProcess(pair.server.pid)! };
      const upgraded = { client: gauge(await pair.metrics('client'), 'tessera_upgraded_connections'), server: gauge(await pair.metrics('server'), 'tessera_upgraded_connections') };
      await new Promise((r) => setTimeout(r, holdMs));
      const held = { client: sampleProcess(pair.client.pid), server: sampleProcess(pair.server.pid) };
      let echoing = 0;
      for (let i = 0; i < sockets.length; i += 50) {
        const ok = await Promise.all(sockets.slice(i, i + 50).map((ws, j) => echoes(ws, `after hold ${i + j}`, 10_000)));
        echoing += ok.filter(Boolean).length;
      }
      const result = {
        scenario: 'hold-websockets',
        startedAt: ctx.startedAt,
        machine: ctx.machine,
        options: { connections: count, holdMs },
        opened: sockets.length,
        failed,
        openSeconds: Number(openSeconds.toFixed(1)),
        echoingAfterHold: echoing,
        clientSide: side(before.client, after.client, held.client, sockets.length, upgraded.client),
        serverSide: side(before.server, after.server, held.server, sockets.length, upgraded.server),
      };
      log(
        `client-side proxy: RSS ${before.client.rssKb >> 10} → ${after.client.rssKb >> 10} MiB (${result.clientSide.rssPerConnectionKb} KiB/ws); server-side proxy: RSS ${before.server.rssKb >> 10} → ${after.server.rssKb >> 10} MiB (${result.serverSide.rssPerConnectionKb} KiB/ws); ${echoing}/${sockets.length} echo after ${holdMs / 1000} s`,
      );
      await writeJson(out || null, result);
    } finally {
      for (const ws of sockets) ws.terminate();
      wss.close();
      app.close();
    }
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
