// The admin listeners' connections, bounded so that no client can take them away from the kubelet's probes and
// the scrapes: at most `max` connections, and when one more arrives the oldest idle one (no request in progress:
// between requests, or never a request yet) is closed to make room, not the newcomer refused; a probe is a short
// request on a fresh or idle connection, so a flood of idle or slowly repeating clients cannot hold every slot. And
// one request at a time per connection: a client that pipelines a second request before the first answer has
// gone out is cut (each answer, /metrics above all, is built whole; thousands pipelined and never read took the
// proxy to 2.6 GB). Admin clients (curl, Prometheus, the kubelet) never pipeline.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface AdminConnectionsOptions {
  readonly max: number;
  /** A connection closed to make room ('evicted'), refused with no idle one to close ('over_cap'), or cut for pipelining. */
  readonly onRefused?: (reason: 'evicted' | 'over_cap' | 'pipelined') => void;
}

/** Applies the rules above to `server`; call before it listens. */
export function guardAdminConnections(server: Server, o: AdminConnectionsOptions): void {
  // Insertion order is age: the first idle entry is the oldest idle connection.
  const open = new Map<Socket, { busy: boolean }>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= o.max) {
      let oldestIdle: Socket | undefined;
      for (const [s, state] of open) {
        if (!state.busy) {
          oldestIdle = s;
          break;
        }
      }
      if (oldestIdle === undefined) {
        o.onRefused?.('over_cap');
        socket.destroy();
        return;
      }
      open.delete(oldestIdle);
      oldestIdle.destroy();
      o.onRefused?.('evicted');
    }
    open.set(socket, { busy: false });
    socket.once('close', () => open.delete(socket));
  });
  // Registered before the listener's own handler (prepended), so a pipelined request never reaches it.
  server.prependListener('request', (req, res) => {
    const state = open.get(req.socket);
    if (state === undefined) return;
    if (state.busy) {
      o.onRefused?.('pipelined');
      req.socket.destroy();
      return;
    }
    state.busy = true;
    res.once('close', () => {
      state.busy = false;
    });
  });
}
