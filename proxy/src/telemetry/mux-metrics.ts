// Metrics of the multiplexed proxy-to-proxy transport (docs/transport.md): sessions open, streams opened, TLS writes
// and reads (requests ÷ writes is the batching the transport exists for), why sessions ended and how often a peer
// without the transport made a proxy fall back to one connection per request. Direction: outbound is the dialing
// side, inbound the serving side. The keepalive cuts of HTTP/2 sessions to peer proxies count with the mux's own
// (reason `keepalive`): one series says a peer stopped answering PINGs, whichever transport found it.
import type { Registry } from 'prom-client';
import { type Cell, cellCounter, directionGauge, type LabelTable, str } from './metric-cells.js';

export class MuxMetrics {
  readonly #sessions: LabelTable<Cell>;
  readonly #streams: LabelTable<Cell>;
  readonly #writes: LabelTable<Cell>;
  readonly #reads: LabelTable<Cell>;
  readonly #ended: LabelTable<Cell>;
  readonly #fallbacks: LabelTable<Cell>;

  constructor(registry: Registry) {
    this.#sessions = directionGauge(registry, 'tessera_mux_sessions_active', 'Multiplexed (tessera-mux/1) mTLS sessions open, by direction (outbound: dialed, inbound: served).');
    this.#streams = cellCounter(registry, 'tessera_mux_streams_opened_total', 'Streams opened on multiplexed sessions, by direction.', ['direction'], str).table;
    this.#writes = cellCounter(registry, 'tessera_mux_tls_writes_total', 'TLS writes of multiplexed sessions (the frames of one event-loop turn go in one write), by direction.', ['direction'], str).table;
    this.#reads = cellCounter(registry, 'tessera_mux_tls_reads_total', 'TLS reads of multiplexed sessions (each may carry the frames of several requests), by direction.', ['direction'], str).table;
    this.#ended = cellCounter(
      registry,
      'tessera_mux_sessions_ended_total',
      'Multiplexed sessions ended, by direction and reason (closed, or the peer fault or dead peer that ended it).',
      ['direction', 'reason'],
      str,
    ).table;
    this.#fallbacks = cellCounter(registry, 'tessera_mux_fallbacks_total', 'Connections to a peer that does not offer tessera-mux/1, made with HTTP/1.1 instead.', ['direction'], str).table;
  }

  sessionOpened(direction: string): void {
    this.#sessions.get1(direction).n++;
  }

  sessionEnded(direction: string, reason: string): void {
    this.#sessions.get1(direction).n--;
    this.#ended.get2(direction, reason).n++;
  }

  /** An HTTP/2 session to a peer proxy cut for an unanswered PING (h2/h2-keepalive.ts): not a mux session, no gauge. */
  h2KeepaliveCut(direction: string): void {
    this.#ended.get2(direction, 'keepalive').n++;
  }

  streamOpened(direction: string): void {
    this.#streams.get1(direction).n++;
  }

  tlsWrite(direction: string): void {
    this.#writes.get1(direction).n++;
  }

  tlsRead(direction: string): void {
    this.#reads.get1(direction).n++;
  }

  fallback(direction: string): void {
    this.#fallbacks.get1(direction).n++;
  }
}
