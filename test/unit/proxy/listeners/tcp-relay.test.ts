// tunnelStatus: the code a finished TCP tunnel is counted and labelled with (tessera_requests_total{code}, "for TCP
// the connection outcome"). Only the upstream's reset says 502: an idle tunnel or a client's reset worked (audit 30c F2).
// relay() on loopback sockets: a leg this proxy cut reaches the other leg as a reset, an orderly end as an end.
// refusalGuard: an upstream's refusal by alert or close after the tunnel began is a 502 and resets the client; a reset
// is left to relay() (9c8b8ed: over a resumed session an app's reset relayed by the upstream proxy reads the same).
import * as net from 'node:net';
import { describe, expect, test } from 'vitest';
import { type RelayResult, refusalGuard, relay, tunnelStatus } from '../../../../proxy/src/listeners/tcp-relay.js';
import type { Refusal, VerdictWatch } from '../../../../proxy/src/upstream/peer-verdict.js';
import { until } from '../../../helpers/until.js';

describe('tunnelStatus', () => {
  test.each<[string | undefined, number]>([
    [undefined, 200],
    ['idle_timeout', 408],
    ['downstream_reset', 499],
    ['upstream_reset', 502],
  ])('relay error %s → %i', (error, status) => {
    expect(tunnelStatus(error)).toBe(status);
  });
});

/** A relayed tunnel on loopback: client ⇄ [a | relay | b] ⇄ app, every socket half-open. */
async function tunnel(idleMs = 60_000): Promise<{ client: net.Socket; a: net.Socket; b: net.Socket; app: net.Socket; done: Promise<RelayResult>; close: () => void }> {
  let app!: net.Socket;
  const appServer = net.createServer({ allowHalfOpen: true }, (s) => (app = s));
  await new Promise<void>((r) => appServer.listen(0, '127.0.0.1', r));
  let a!: net.Socket;
  const front = net.createServer({ allowHalfOpen: true }, (s) => (a = s));
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const client = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const b = net.connect({ port: (appServer.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await until('both legs connected', () => a !== undefined && app !== undefined && !b.connecting && !client.connecting, 5_000, 5);
  const done = new Promise<RelayResult>((resolve) => relay(a, b, idleMs, resolve));
  return {
    client,
    a,
    b,
    app,
    done,
    close: () => {
      for (const s of [client, a, b, app]) s.destroy();
      front.close();
      appServer.close();
    },
  };
}

/** How `s` ends: 'end' (an orderly FIN) or 'reset'. */
function ending(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    s.on('data', () => undefined);
    s.once('end', () => resolve('end'));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`));
  });
}

describe('relay: how one leg ends reaches the other', () => {
  test('a leg this proxy cuts (destroyed without an error, mid-tunnel: the drain deadline, a ban) resets the other leg, either way round (audit 38a F1)', async () => {
    for (const side of ['a', 'b'] as const) {
      const t = await tunnel();
      try {
        const appEnds = ending(t.app);
        const clientEnds = ending(t.client);
        t.client.write('half an upload');
        await until('the app has the bytes', () => t.app.bytesRead > 0, 5_000, 5);
        // Before: the relay read the cut leg's close (hadError false) as orderly and ended the other with a FIN.
        t[side].destroy();
        expect(side === 'a' ? await appEnds : await clientEnds).toBe('reset');
        expect((await t.done).error).toBeUndefined();
      } finally {
        t.close();
      }
    }
  });

  test('a tunnel both sides finish in order closes in order: each side reads the end, nobody a reset', async () => {
    const t = await tunnel();
    try {
      const appEnds = ending(t.app);
      const clientEnds = ending(t.client);
      t.client.end('request');
      expect(await appEnds).toBe('end');
      t.app.end('answer');
      expect(await clientEnds).toBe('end');
      expect(await t.done).toEqual({ bytesIn: 7, bytesOut: 6 });
    } finally {
      t.close();
    }
  });

  test('the idle cut closes both legs (a FIN each way), as documented, and says idle_timeout', async () => {
    const t = await tunnel(100);
    try {
      const appEnds = ending(t.app);
      const clientEnds = ending(t.client);
      expect(await Promise.all([appEnds, clientEnds])).toEqual(['end', 'end']);
      expect((await t.done).error).toBe('idle_timeout');
    } finally {
      t.close();
    }
  });
});

describe('refusalGuard: which upstream verdicts make a tunnel a refusal', () => {
  /** A verdict already known, as connectors.ts delivers one that came before the tunnel subscribed. */
  const known = (refusal: Refusal | null): VerdictWatch => (fn) => fn(refusal);
  const refusal = (code: string): Refusal => ({ reason: 'protocol', err: Object.assign(new Error(code), { code }) });

  test.each<[string, VerdictWatch | undefined, string]>([
    ['no verdict watch (TLS 1.2, plaintext)', undefined, 'upstream_reset'],
    ['accepted', known(null), 'upstream_reset'],
    ['a reset (ECONNRESET) stays relay()\'s', known(refusal('ECONNRESET')), 'upstream_reset'],
  ])('%s: relay()\'s error is kept and the client is not cut', async (_, verdict, kept) => {
    const t = await tunnel();
    try {
      const count = refusalGuard(verdict, t.a);
      expect(count(kept)).toBe(kept);
      expect(count(undefined)).toBeUndefined();
      t.app.write('still flowing');
      await until('the client reads through the tunnel', () => t.client.bytesRead > 0, 5_000, 5);
      expect(t.a.destroyed).toBe(false);
    } finally {
      t.close();
    }
  });

  test.each(['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'ERR_TLS_PEER_CLOSED'])(
    'a refusal by %s: upstream_unavailable whatever relay() saw, and the client is reset',
    async (code) => {
      const t = await tunnel();
      try {
        const clientEnds = ending(t.client);
        const count = refusalGuard(known(refusal(code)), t.a);
        expect(await clientEnds).toBe('reset');
        expect(count(undefined)).toBe('upstream_unavailable');
        expect(count('upstream_reset')).toBe('upstream_unavailable');
      } finally {
        t.close();
      }
    },
  );
});
