// The first-bytes detector of permissive inbound listeners, on real loopback sockets: TLS vs plaintext from the
// first two bytes, whatever the segmentation; nothing consumed (the next reader sees every byte); silent and
// vanishing peers bounded.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, describe, expect, test } from 'vitest';
import { type SniffResult, classifyFirstBytes, sniffFirstBytes } from '../../../../proxy/src/listeners/tls-sniff.js';
import { realTimers } from '../../../../shared-io/timers.js';

describe('classifyFirstBytes', () => {
  test.each<[string, number[], string | null]>([
    ['nothing yet', [], null],
    ['0x16 alone: need the version byte', [0x16], null],
    ['TLS handshake record, major version 3', [0x16, 0x03, 0x01], 'tls'],
    ['0x16 then not 3: plaintext', [0x16, 0x00], 'plaintext'],
    ['an HTTP method', [...Buffer.from('GET / HTTP/1.1')], 'plaintext'],
    ['the HTTP/2 preface', [...Buffer.from('PRI * HTTP/2.0')], 'plaintext'],
    ['a TLS alert record is not a ClientHello', [0x15, 0x03], 'plaintext'],
    ['binary garbage', [0x00, 0xff], 'plaintext'],
  ])('%s', (_name, bytes, want) => {
    expect(classifyFirstBytes(Uint8Array.from(bytes))).toBe(want);
  });
});

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server that sniffs each connection and then reads everything the client sends until it ends. */
async function sniffingServer(timeoutMs: number): Promise<{ port: number; next: () => Promise<{ result: SniffResult; rest: Buffer; ms: number }> }> {
  const results: { result: SniffResult; rest: Buffer; ms: number }[] = [];
  const waiters: ((r: { result: SniffResult; rest: Buffer; ms: number }) => void)[] = [];
  const server = net.createServer((socket) => {
    const start = Date.now();
    socket.on('error', () => undefined);
    sniffFirstBytes(socket, timeoutMs, realTimers, (result) => {
      const ms = Date.now() - start;
      const deliver = (rest: Buffer) => {
        const r = { result, rest, ms };
        const w = waiters.shift();
        if (w) w(r);
        else results.push(r);
      };
      if (result !== 'tls' && result !== 'plaintext') return deliver(Buffer.alloc(0));
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('end', () => {
        deliver(Buffer.concat(chunks));
        socket.end();
      });
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => new Promise((resolve) => (results.length > 0 ? resolve(results.shift()!) : waiters.push(resolve))),
  };
}

/** Sends `parts` with a pause between them (separate TCP segments), then ends. */
function send(port: number, parts: Buffer[], end = true): net.Socket {
  const s = net.connect({ host: '127.0.0.1', port }, async () => {
    for (const p of parts) {
      s.write(p);
      await new Promise((r) => setTimeout(r, 30));
    }
    if (end) s.end();
  });
  s.on('error', () => undefined);
  return s;
}

describe('sniffFirstBytes', () => {
  test('plaintext: every byte is left for the next reader', async () => {
    const srv = await sniffingServer(2_000);
    const body = Buffer.from('GET /x HTTP/1.1\r\nhost: a\r\n\r\n');
    send(srv.port, [body]);
    expect(await srv.next()).toMatchObject({ result: 'plaintext', rest: body });
  });

  test('TLS split after the first byte: waits for the second, then leaves both', async () => {
    const srv = await sniffingServer(2_000);
    send(srv.port, [Buffer.from([0x16]), Buffer.from([0x03, 0x01, 0xaa])]);
    const r = await srv.next();
    expect(r.result).toBe('tls');
    expect([...r.rest]).toEqual([0x16, 0x03, 0x01, 0xaa]);
  });

  test('a real TLS handshake completes on a socket handed to a TLS server after sniffing', async () => {
    // Plain TLS without certificates is impossible; PSK keeps the test free of a CA.
    const psk = Buffer.alloc(32, 7);
    const tlsServer = tls.createServer({ pskCallback: () => psk, ciphers: 'PSK-AES128-GCM-SHA256', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }, (s) => {
      s.end('secure hello');
    });
    const front = net.createServer((socket) => sniffFirstBytes(socket, 2_000, realTimers, (r) => (r === 'tls' ? tlsServer.emit('connection', socket) : socket.destroy())));
    servers.push(front);
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const port = (front.address() as net.AddressInfo).port;
    const got = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, pskCallback: () => ({ psk, identity: 'test' }), ciphers: 'PSK-AES128-GCM-SHA256', maxVersion: 'TLSv1.2', checkServerIdentity: () => undefined });
      let text = '';
      c.on('data', (d) => {
        text += d;
      });
      c.on('end', () => resolve(text));
      c.on('error', reject);
    });
    expect(got).toBe('secure hello');
  });

  test('a silent peer, and one that stops after 0x16, time out; the socket is destroyed', async () => {
    const srv = await sniffingServer(300);
    for (const parts of [[], [Buffer.from([0x16])]]) {
      const c = send(srv.port, parts, false);
      const closed = new Promise((r) => c.once('close', r));
      const r = await srv.next();
      expect(r.result).toBe('timeout');
      expect(r.ms).toBeGreaterThanOrEqual(290);
      expect(r.ms).toBeLessThan(3_000);
      await closed;
    }
  });

  test('a peer that leaves before deciding is "closed"', async () => {
    const srv = await sniffingServer(5_000);
    send(srv.port, [Buffer.from([0x16])]);
    const r = await srv.next();
    expect(r.result).toBe('closed');
    expect(r.ms).toBeLessThan(3_000);
  });
});
