// The proxy's listeners as one group: started in order, ticket keys rotated on a schedule, drained until every
// listener is idle or the drain deadline passes, then closed. Knows listeners only through the Listener interface.
import type { Timers } from '../../../shared-io/timers.js';
import type { TicketKeys } from '../tls/tls-contexts.js';
import type { EndpointView } from '../routing/lease.js';
import type { Listener, ListenerKind } from './listener.js';
import { listenFailure, type PortReservations } from './port-reservations.js';
import { settledWithin } from '../../../shared-io/bounded-wait.js';

/** How long the cut connections are given to close (and record their exchanges) after the drain deadline. */
const CUT_SETTLE_MS = 1_000;

export interface StartedListener {
  readonly kind: ListenerKind;
  readonly name: string;
  readonly port: number;
}

export class ListenerGroup {
  readonly #listeners: Listener[] = [];
  readonly #timers: Timers;

  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /**
   * Starts each in turn, on the socket `reserved` holds for it if any; on a failure all are closed and the error is
   * thrown (a port in use as a coded error).
   */
  async start(listeners: readonly Listener[], reserved?: PortReservations): Promise<StartedListener[]> {
    const started: StartedListener[] = [];
    let current: Listener | undefined;
    try {
      for (const l of listeners) {
        current = l;
        this.#listeners.push(l);
        started.push({ kind: l.kind, name: l.config.name, port: (await l.start(reserved?.take(l.kind, l.config.name))).port });
      }
    } catch (e) {
      // close() cuts connections only: drain() first so the ports already bound are released too.
      for (const l of listeners) {
        l.drain();
        void l.close();
      }
      throw listenFailure(e, 'after the identity was in', current && { kind: current.kind, name: current.config.name, listen: current.config.listen });
    }
    return started;
  }

  /** The first inbound listener, where it is bound: the served-serial check dials it. */
  servedTarget(): { host: string; port: number } | undefined {
    const l = this.#listeners.find((x) => x.kind === 'inbound');
    return l ? { host: l.config.listen.host, port: l.port } : undefined;
  }

  /** The port the `kind` listener named `name` is bound to (undefined before it started). */
  portOf(kind: ListenerKind, name: string): number | undefined {
    const l = this.#listeners.find((x) => x.kind === kind && x.config.name === name);
    return l && l.port !== 0 ? l.port : undefined;
  }

  /** For /config. */
  describe(): { name: string; port: number; open: number }[] {
    return this.#listeners.map((l) => ({ name: l.config.name, port: l.port, open: l.openConnections }));
  }

  /** GET /endpoints: every balanced service's endpoints; a service two listeners route to lists each's view, with the listener named. */
  endpoints(): Record<string, (EndpointView & { readonly listener: string })[]> {
    const out: Record<string, (EndpointView & { readonly listener: string })[]> = {};
    for (const l of this.#listeners) {
      for (const [service, views] of Object.entries(l.endpoints?.() ?? {})) {
        const list = out[service] ?? [];
        list.push(...views.map((v) => ({ ...v, listener: l.config.name })));
        out[service] = list;
      }
    }
    return out;
  }

  /** Rotates the ticket keys every `everyMs` and hands them to the listeners that issue tickets; returns the stop. */
  rotateTicketKeysEvery(keys: TicketKeys, everyMs: number): { stop(): void } {
    const handle = this.#timers.setInterval(() => {
      keys.rotate();
      for (const l of this.#listeners) l.rotateTicketKeys?.();
    }, everyMs);
    return { stop: () => this.#timers.clearInterval(handle) };
  }

  /**
   * Stops accepting, waits until all are idle or `drainTimeoutMs` has passed, then cuts what is left and waits (at
   * most CUT_SETTLE_MS) for the cut connections to close and their exchanges to be recorded (a TCP tunnel's once
   * both of its legs have): the access log is closed right after this.
   */
  async drainAndClose(drainTimeoutMs: number): Promise<void> {
    for (const l of this.#listeners) l.drain();
    await settledWithin(Promise.all(this.#listeners.map((l) => l.idle())), drainTimeoutMs, this.#timers);
    const closed = this.#listeners.map((l) => l.close());
    await settledWithin(Promise.all(closed), CUT_SETTLE_MS, this.#timers);
  }
}
