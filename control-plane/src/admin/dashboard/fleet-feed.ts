// The dashboard's live stream (GET /api/events, Server-Sent Events): every connected page gets the fleet view when
// it connects and again whenever it changes, checked every pollMs while anyone watches and at once on refresh()
// (a CA change, a grant). One build at a time is shared by every viewer and by GET /api/fleet; heartbeat comments
// keep idle connections alive through proxies; viewers are capped, and one that stops reading is dropped.
// Builds are spaced by their cost: none starts sooner than costFactor times the last one's duration after it ended
// (a poll, an announcement, a new viewer or GET /api/fleet alike; within that, /api/fleet gets the last view), so a
// large fleet's view takes at most about 1/(costFactor+1) of the process however many watch (audit 54b F5).
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Clock } from '../../../../common/clock.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { FleetView } from './fleet-view.js';

export interface FleetFeedOptions {
  readonly build: () => Promise<FleetView>;
  readonly timers: Timers;
  readonly clock: Clock;
  /** How often the view is rebuilt while a page watches (at most: see costFactor). */
  readonly pollMs?: number;
  /** The next build starts no sooner than this many times the last build's duration after it ended. */
  readonly costFactor?: number;
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
/** 20: building the view takes at most ~5 % of the control plane's time. */
export const DEFAULT_COST_FACTOR = 20;
export const MAX_SPACING_MS = 60_000;

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
  /** The last build that ended: when, what it took and what it built (undefined when it failed). */
  #built: { endMs: number; tookMs: number; view: FleetView | undefined } | undefined;
  /** A refresh waiting for the spacing to pass. */
  #deferred: unknown;
  #refreshing = false;
  #again = false;
  /** The view last sent, serialised once for every viewer (16 pages joining at once cost one JSON.stringify). */
  #last: { key: string; json: string } | undefined;
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

  /** ms until the spacing after the last build has passed (0: a build may start now). */
  #waitMs(): number {
    const b = this.#built;
    // Capped, so a build slowed by a busy process (its duration is wall time) leaves the page a minute old at most.
    return b ? Math.max(0, b.endMs + Math.min(MAX_SPACING_MS, (this.#o.costFactor ?? DEFAULT_COST_FACTOR) * b.tookMs) - this.#o.clock.nowMs()) : 0;
  }

  /** A fresh view, or the last one while the spacing after it has not passed; concurrent callers share one build. */
  current(): Promise<FleetView> {
    if (this.#inflight) return this.#inflight;
    const last = this.#built?.view;
    if (last && this.#waitMs() > 0) return Promise.resolve(last);
    return this.#build();
  }

  #build(): Promise<FleetView> {
    if (this.#inflight) return this.#inflight;
    const startMs = this.#o.clock.nowMs();
    const ended = (view: FleetView | undefined) => {
      const endMs = this.#o.clock.nowMs();
      this.#built = { endMs, tookMs: Math.max(0, endMs - startMs), view };
      this.#inflight = undefined;
    };
    const run = this.#o.build().then(
      (view) => {
        ended(view);
        return view;
      },
      (e: unknown) => {
        ended(undefined);
        throw e;
      },
    );
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
    if (this.#last) this.#send(res, this.#last.json);
    if (this.#clients.size === 1) this.#startTimers();
    // The newcomer gets the cached view at once, and a fresh one when it differs: now when the cached one is older
    // than a poll (the spacing allowing), else with the next poll, as everyone else.
    const b = this.#built;
    if (!this.#last || !b || this.#o.clock.nowMs() - b.endMs >= (this.#o.pollMs ?? DEFAULT_POLL_MS)) this.refresh();
    return true;
  }

  /**
   * Rebuilds (when anyone watches) as soon as the spacing allows and sends the view if it changed; calls during a
   * rebuild, or while one waits for the spacing, coalesce into one more.
   */
  refresh(): void {
    if (this.#closed || this.#clients.size === 0) return;
    if (this.#refreshing) {
      this.#again = true;
      return;
    }
    if (this.#deferred !== undefined) return;
    const wait = this.#waitMs();
    if (wait > 0) {
      this.#deferred = this.#o.timers.setTimeout(() => {
        this.#deferred = undefined;
        this.refresh();
      }, wait);
      return;
    }
    this.#refreshing = true;
    this.#build()
      .then(
        (view) => {
          const key = viewKey(view);
          if (key === this.#last?.key) return;
          this.#last = { key, json: JSON.stringify(view) };
          for (const c of this.#clients) this.#send(c, this.#last.json);
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

  #send(res: ServerResponse, json: string): void {
    this.#write(res, `id: ${++this.#seq}\nevent: fleet\ndata: ${json}\n\n`);
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
    if (this.#deferred !== undefined) t.clearTimeout(this.#deferred);
    this.#deferred = undefined;
    if (this.#poll !== undefined) t.clearInterval(this.#poll);
    if (this.#heartbeat !== undefined) t.clearInterval(this.#heartbeat);
    this.#poll = undefined;
    this.#heartbeat = undefined;
  }
}
