// A listener's connections, bounded so that no client can take them away from the clients it is for (the
// kubelet's probes and the scrapes on an admin listener, federated peers on the bundle endpoint, the API server on
// the injector's webhook): at most `max` connections, and at the cap one is closed to make room for a newcomer
// rather than the newcomer refused, as connection-table.ts chooses it (one that has asked nothing for over a second,
// in its TLS handshake or handshaken with no request since; else idle after a request; else a younger one that has
// asked nothing yet; else a request in progress past `busyGraceMs`). And, unless `allowPipelining`, one request at a
// time per connection: a client that pipelines a second request before its first answer has gone out is cut (each answer,
// /metrics above all, is built whole; thousands pipelined and never read took the proxy to 2.6 GB). Works for
// node:http and node:https servers alike: a connection is known by its peer address and port, the same on the TCP
// socket, the TLS socket and the request.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock } from '../common/clock.js';
import { type ConnectionState, ConnectionTable, type TrackedConnection } from './connection-table.js';

export interface ListenerConnectionsOptions {
  readonly max: number;
  /** A request in progress for less than this is never closed to make room. */
  readonly busyGraceMs?: number;
  readonly clock: Clock;
  /** A TLS server: a connection is in its handshake until 'secureConnection'. */
  readonly tls?: boolean;
  /** Pipelined requests are answered in turn instead of the connection being cut. */
  readonly allowPipelining?: boolean;
  /**
   * A connection closed to make room ('evicted', with the state it was in), refused with none to close
   * ('over_cap', with the newcomer's address), or cut for pipelining.
   */
  readonly onRefused?: (reason: 'evicted' | 'over_cap' | 'pipelined', detail: { readonly state?: ConnectionState; readonly remote?: string }) => void;
}

const BUSY_GRACE_MS = 2_000;

const peerOf = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => `${s.remoteAddress}|${s.remotePort}`;

export interface GuardedListener {
  /**
   * The connection was closed here (to make room, or refused at the cap), already counted: a TLS server's
   * 'tlsClientError' for it (its handshake cut) is not a second refusal. Takes the TLS socket or its TCP socket.
   */
  closedForRoom(socket: object): boolean;
}

/** Applies the rules above to `server` (an http or https server); call before it listens. */
export function guardListenerConnections(server: Server, o: ListenerConnectionsOptions): GuardedListener {
  const table = new ConnectionTable({ max: o.max, busyGraceMs: o.busyGraceMs ?? BUSY_GRACE_MS, clock: o.clock });
  const byPeer = new Map<string, { readonly tracked: TrackedConnection; secure?: Socket }>();
  // By TCP socket: node:tls keeps it as the TLS socket's _parent.
  const closedHere = new WeakSet<object>();
  server.on('connection', (raw: Socket) => {
    const link: { secure?: Socket } = {};
    const tracked = table.admit(
      () => {
        closedHere.add(raw);
        (link.secure ?? raw).destroy();
      },
      (state) => o.onRefused?.('evicted', { state }),
    );
    if (!tracked) {
      closedHere.add(raw);
      o.onRefused?.('over_cap', raw.remoteAddress ? { remote: raw.remoteAddress } : {});
      raw.destroy();
      return;
    }
    const key = peerOf(raw);
    const entry = Object.assign(link, { tracked });
    byPeer.set(key, entry);
    raw.once('close', () => {
      tracked.closed();
      if (byPeer.get(key) === entry) byPeer.delete(key);
    });
    if (!o.tls) tracked.secured();
  });
  if (o.tls) {
    server.on('secureConnection', (s: Socket) => {
      const entry = byPeer.get(peerOf(s));
      if (!entry) return;
      entry.secure = s;
      s.once('close', () => entry.tracked.closed());
      entry.tracked.secured();
    });
  }
  // Registered before the server's own handler (prepended); that handler returns at once for a socket cut here.
  server.prependListener('request', (req, res) => {
    const entry = byPeer.get(peerOf(req.socket));
    if (!entry) return;
    if (entry.tracked.state === 'busy' && !o.allowPipelining) {
      // The requests parsed from the same read still arrive here after the cut: one refusal per connection.
      if (!req.socket.destroyed) o.onRefused?.('pipelined', {});
      req.socket.destroy();
      return;
    }
    entry.tracked.busy();
    res.once('close', () => entry.tracked.idle());
  });
  return {
    closedForRoom: (socket) => closedHere.has(socket) || closedHere.has((socket as { readonly _parent?: object | null })._parent ?? socket),
  };
}
