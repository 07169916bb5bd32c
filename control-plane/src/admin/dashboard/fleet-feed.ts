// The dashboard's live stream (GET /api/events, Server-Sent Events): every connected page gets the fleet view when
// it connects and again whenever it changes, checked every pollMs while anyone watches and at once on refresh()
// (a CA change, a grant). One build at a time is shared by every viewer and by GET /api/fleet; heartbeat comments
// keep idle connections alive through proxies; viewers are capped, and one that stops reading is dropped.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Timers } from '../../../../shared-io/timers.js';
import type { FleetView } from './fleet-view.js';

export interface FleetFeedOptions {
  readonly build: () => Promise<FleetView>;
  readonly timers: Timers;
  /** How often the view is rebuilt while a page watches. */
  readonly pollMs?: number;
  readonly heartbeatMs?: number;
  readonly maxClients?: number;
  /** A viewer with this much unsent is dropped (it reconnects, and gets the latest view). */
  readonly maxBufferedBytes?: number;
  /** Headers every answer carries (security headers). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly onError?: (e: unknown) => void;
}

export const DEFAULT_POLL_MS = 2_000;
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_CLIENTS = 16;

/** What decides "changed": the view without the moment it was built. */
export function viewKey(view: FleetView): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...view, generatedAtMs: 0 }))
    .digest('hex');
}

export class FleetFeed {
  readonly #o: FleetFeedOptions;
  readonly #clients = new Set<ServerResponse>();
  #inflight: Promise<FleetView> | undefined;
  #refreshing = false;
  #again = false;
  #last: { view: FleetView; key: string } | undefined;
  #seq = 0;
  #poll: unknown;
  #heartbeat: unknown;
  #closed = false;

  constructor(opts: FleetFeedOptions) {
    this.#o = opts;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** A fresh view; concurrent callers share one build. */
  current(): Promise<FleetView> {
    if (this.#inflight) return this.#inflight;
    const run = this.#o.build().finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = run;
    return run;
  }

  /** Serves `res` as an event stream; false when the viewer cap is reached (the caller answers 503). */
  attach(res: ServerResponse): boolean {
    if (this.#closed || this.#clients.size >= (this.#o.maxClients ?? DEFAULT_MAX_CLIENTS)) return false;
    res.writeHead(200, { ...this.#o.headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 3000\n\n');
    this.#clients.add(res);
    res.once('close', () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#stopTimers();
    });
    if (this.#last) this.#send(res, this.#last.view);
    if (this.#clients.size === 1) this.#startTimers();
    // The newcomer gets the cached view at once and a fresh one when it differs.
    this.refresh();
    return true;
  }

  /** Rebuilds now (when anyone watches) and sends the view if it changed; calls during a rebuild coalesce into one more. */
  refresh(): void {
    if (this.#closed || this.#clients.size === 0) return;
    if (this.#refreshing) {
      this.#again = true;
      return;
    }
    this.#refreshing = true;
    this.current()
      .then(
        (view) => {
          const key = viewKey(view);
          if (key === this.#last?.key) return;
          this.#last = { view, key };
          for (const c of this.#clients) this.#send(c, view);
        },
        (e: unknown) => this.#o.onError?.(e),
      )
      .finally(() => {
        this.#refreshing = false;
        if (!this.#again) return;
        this.#again = false;
        this.refresh();
      });
  }

  /** Ends every stream and stops the timers. */
  close(): void {
    this.#closed = true;
    this.#stopTimers();
    for (const c of this.#clients) c.end();
    this.#clients.clear();
  }

  #send(res: ServerResponse, view: FleetView): void {
    this.#write(res, `id: ${++this.#seq}\nevent: fleet\ndata: ${JSON.stringify(view)}\n\n`);
  }

  #write(res: ServerResponse, text: string): void {
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > (this.#o.maxBufferedBytes ?? 4 << 20)) {
      res.destroy();
      return;
    }
    res.write(text);
  }

  #startTimers(): void {
    const t = this.#o.timers;
    this.#poll = t.setInterval(() => this.refresh(), this.#o.pollMs ?? DEFAULT_POLL_MS);
    this.#heartbeat = t.setInterval(() => {
      for (const c of this.#clients) this.#write(c, ': heartbeat\n\n');
    }, this.#o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  }

  #stopTimers(): void {
    const t = this.#o.timers;
    if (this.#poll !== undefined) t.clearInterval(this.#poll);
    if (this.#heartbeat !== undefined) t.clearInterval(this.#heartbeat);
    this.#poll = undefined;
    this.#heartbeat = undefined;
  }
}
