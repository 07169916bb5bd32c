// The Workload API socket's connections, bounded the way the control plane's gRPC port is (audit 61b F2): node's own
// `maxConnections` dropped every newcomer past the cap silently, so 64 connections that trickled their HTTP/2
// preface (any local process may connect: the socket is 0666) kept every workload from its SVID, uncounted, for as
// long as they were reopened. Now, at the cap, one that has made no call for over a second makes room, else the one
// idle longest after its calls, else a younger one with no call yet (connection-table.ts); one with a call in
// progress (an SVID stream) never does; each is counted `too_many_connections`. And a connection must start its
// first call within `firstCallMs` of connecting (`headers_timeout`), where grpc-js's idle close waited 60 s.
import type { Socket } from 'node:net';
import type { Clock } from '../../../common/clock.js';
import { ConnectionTable, type TrackedConnection } from '../../../shared-io/connection-table.js';
import type { Timers } from '../../../shared-io/timers.js';

export type WorkloadConnectionFault = 'too_many_connections' | 'headers_timeout';

export interface WorkloadConnectionsOptions {
  readonly max: number;
  readonly firstCallMs: number;
  readonly clock: Clock;
  /** The first-call deadlines run here, holding the process (a connection is open meanwhile). */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly onRefused: (reason: WorkloadConnectionFault) => void;
}

/** Set on each socket admitted: the session guard reports activity with node:http2's view of it, which reads it. */
const PLACE = Symbol('tessera.workloadConnection');

interface Place {
  readonly tracked: TrackedConnection;
  firstCall: unknown;
}

export class WorkloadConnections {
  readonly #o: WorkloadConnectionsOptions;
  readonly #table: ConnectionTable;

  constructor(o: WorkloadConnectionsOptions) {
    this.#o = o;
    // A call in progress is never closed to make room: an SVID stream lasts as long as its workload.
    this.#table = new ConnectionTable({ max: o.max, busyGraceMs: Number.POSITIVE_INFINITY, clock: o.clock });
  }

  /** A new connection: true when it may stay (another may have been closed for it); false: it was closed. */
  admit(socket: Socket): boolean {
    const tracked = this.#table.admit(
      () => socket.destroy(),
      () => this.#o.onRefused('too_many_connections'),
    );
    if (!tracked) {
      this.#o.onRefused('too_many_connections');
      socket.destroy();
      return false;
    }
    const place: Place = {
      tracked,
      firstCall: this.#o.timers.setTimeout(() => {
        this.#o.onRefused('headers_timeout');
        socket.destroy();
      }, this.#o.firstCallMs, 'keep-alive'),
    };
    (socket as unknown as Record<symbol, Place>)[PLACE] = place;
    socket.once('close', () => {
      this.#o.timers.clearTimeout(place.firstCall);
      tracked.closed();
    });
    return true;
  }

  /** Its first bytes arrived: no longer "connecting" (the table's handshake state; there is no TLS here). */
  started(socket: Socket): void {
    placeOf(socket)?.tracked.secured();
  }

  /** A session's calls went from none to some (`busy`) or back, as GrpcSessionGuard reports them. */
  activity(socket: object, busy: boolean): void {
    const place = placeOf(socket);
    if (!place) return;
    if (!busy) {
      place.tracked.idle();
      return;
    }
    this.#o.timers.clearTimeout(place.firstCall);
    place.tracked.busy();
  }
}

function placeOf(socket: object): Place | undefined {
  return (socket as Record<symbol, Place | undefined>)[PLACE];
}
