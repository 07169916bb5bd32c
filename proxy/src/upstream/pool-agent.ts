// A node:http Agent whose requests go through a keep-alive pool (connection-pool.ts): the one the edge's HTTP/1.1
// clients use for the same route, so that its HTTP/2 clients' requests, re-made as HTTP/1.1 (edge-h2-to-h1.ts),
// share its bound (limits.upstreamPoolSize exchanges in flight, the rest queued) and its transport (streams of the
// multiplexed session to a Tessera peer, keep-alive connections otherwise). Node's own Agent counted a connection
// only once a custom createConnection had called back, so a burst of streams past the bound each opened its own
// (audit 57a F1: 366 mTLS connections with a bound of 8, until the edge ran out of descriptors).
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { http } from '../../../shared-io/node-http.js';
import type { ConnectionPool } from './connection-pool.js';
import { LeaseSocket } from './lease-socket.js';

export class PoolAgent extends http.Agent {
  readonly #pool: ConnectionPool;

  constructor(pool: ConnectionPool) {
    // keepAlive: node:http asks the upstream to keep the connection and frees it ('free') after a complete exchange.
    super({ keepAlive: true });
    this.#pool = pool;
  }

  /**
   * node:http's call for each request (the documented contract of an Agent-like object): its connection, handed over
   * at once and leased in the pool behind it. node:http takes any Duplex as a connection (as from createConnection);
   * its typings say net.Socket.
   */
  addRequest(req: ClientRequest): void {
    const socket = new LeaseSocket(this.#pool);
    req.onSocket(socket as unknown as Socket);
    socket.lease();
  }
}
