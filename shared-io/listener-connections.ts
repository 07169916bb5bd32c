// A listener's connections, bounded so that no client can take them away from the clients it is for (the
// kubelet's probes and the scrapes on an admin listener, federated peers on the bundle endpoint): at most `max`
// connections, and when one more arrives one is closed to make room rather than the newcomer refused: the oldest
// idle one (no request in progress: before its first, or between two; a TLS connection still in its handshake
// too), else the oldest whose request has been in progress longer than `busyGraceMs` (a hung /app-health probe
// held 64 slots busy). Only when every connection has a younger request in progress is the newcomer closed. And one
// request at a time per connection: a client that pipelines a second request before its first answer has gone out
// is cut (each answer, /metrics above all, is built whole; thousands pipelined and never read took the proxy to
// 2.6 GB). Their clients (curl, Prometheus, the kubelet, bundle fetchers) never pipeline. Works for node:http and
// node:https servers alike: a connection is known by its peer address and port, the same on the TCP socket and on
// the TLS socket a request arrives on.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock } from '../common/clock.js';

export interface ListenerConnectionsOptions {
  readonly max: number;
  /** A request in progress for less than this is never closed to make room. */
  readonly busyGraceMs?: number;
  readonly clock: Clock;
  /** A connection closed to make room ('evicted'), refused with none to close ('over_cap'), or cut for pipelining. */
  readonly onRefused?: (reason: 'evicted' | 'over_cap' | 'pipelined') => void;
}

const BUSY_GRACE_MS = 2_000;

interface Tracked {
  readonly socket: Socket;
  /** When its request in progress began; undefined while idle. */
  busySince: number | undefined;
}

const peerOf = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => `${s.remoteAddress}|${s.remotePort}`;

/** Applies the rules above to `server` (an http or https server); call before it listens. */
export function guardListenerConnections(server: Server, o: ListenerConnectionsOptions): void {
  const grace = o.busyGraceMs ?? BUSY_GRACE_MS;
  // Insertion order is age.
  const open = new Map<string, Tracked>();
  const victim = (): Tracked | undefined => {
    const now = o.clock.nowMs();
    let oldBusy: Tracked | undefined;
    for (const t of open.values()) {
      if (t.busySince === undefined) return t;
      if (oldBusy === undefined && now - t.busySince > grace) oldBusy = t;
    }
    return oldBusy;
  };
  server.on('connection', (socket: Socket) => {
    if (open.size >= o.max) {
      const v = victim();
      if (v === undefined) {
        o.onRefused?.('over_cap');
        socket.destroy();
        return;
      }
      open.delete(peerOf(v.socket));
      v.socket.destroy();
      o.onRefused?.('evicted');
    }
    const key = peerOf(socket);
    const tracked: Tracked = { socket, busySince: undefined };
    open.set(key, tracked);
    socket.once('close', () => {
      if (open.get(key) === tracked) open.delete(key);
    });
  });
  // Registered before the server's own handler (prepended); that handler returns at once for a socket cut here.
  server.prependListener('request', (req, res) => {
    const t = open.get(peerOf(req.socket));
    if (t === undefined) return;
    if (t.busySince !== undefined) {
      o.onRefused?.('pipelined');
      req.socket.destroy();
      return;
    }
    t.busySince = o.clock.nowMs();
    res.once('close', () => {
      t.busySince = undefined;
    });
  });
}
