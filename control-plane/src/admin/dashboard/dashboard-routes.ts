// The fleet dashboard on the control plane's admin listener (DESIGN.md section 12): GET /dashboard (the page and
// its script, style and icon under /dashboard/), GET /api/fleet (the fleet view as JSON) and GET /api/events (the
// same view streamed as Server-Sent Events when it changes). Read-only: GET and HEAD only. Everything is served
// from this process (no network at run time), under a Content-Security-Policy of 'self' with no inline script.
// The admin listener has no authentication of its own, so by default only loopback peers are served (kubectl
// port-forward arrives that way); the listener itself answers only requests addressed to an IP or localhost, which
// keeps a web page that rebinds its own name to 127.0.0.1 from reading the fleet (shared-io/local-request.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopbackPeer } from '../../../../shared-io/local-request.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { ChangeFeed, ChangeTopic } from '../../store/store-contract.js';
import { APP_JS } from './assets/app-js.js';
import { ICON_SVG, PAGE_HTML } from './assets/page-html.js';
import { STYLE_CSS } from './assets/style-css.js';
import { TABLES_JS } from './assets/tables-js.js';
import { TIME_AXIS_JS } from './assets/time-axis-js.js';
import { FleetFeed } from './fleet-feed.js';
import { buildFleetView, DEFAULT_FLEET_LIMITS, type FleetLimits, type FleetSources, type PanelName } from './fleet-view.js';

export interface DashboardDeps extends FleetSources {
  readonly timers: Timers;
  /** Changes announced by any replica trigger a rebuild at once (the poll catches everything else). */
  readonly changes?: Pick<ChangeFeed, 'subscribe'>;
  /**
   * Serve peers that are not on loopback (only behind your own authentication). Default false. The admin listener
   * still checks the Host of every request (shared-io/local-request.ts).
   */
  readonly allowRemote?: boolean;
  readonly limits?: Partial<FleetLimits>;
  readonly pollMs?: number;
  /** Builds are spaced by this many times the last one's duration (fleet-feed.ts). */
  readonly costFactor?: number;
  readonly heartbeatMs?: number;
  readonly maxClients?: number;
  /** A view that could not be built, or one source of it (`panels`: those it leaves unavailable); log it. */
  readonly onError?: (e: unknown, panels?: readonly PanelName[]) => void;
}

export interface DashboardRoutes {
  /** Answers the dashboard's paths and returns true; false for any other path (left to the admin listener). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Sends watching pages a fresh view if anything changed (call on a CA change, a grant, a ban). */
  refresh(): void;
  /** Ends the event streams and stops their timers. */
  close(): void;
}

export const DASHBOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const ASSETS: Readonly<Record<string, { readonly type: string; readonly body: string }>> = {
  '/dashboard': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
  '/dashboard/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
  '/dashboard/app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
  '/dashboard/tables.js': { type: 'text/javascript; charset=utf-8', body: TABLES_JS },
  '/dashboard/time-axis.js': { type: 'text/javascript; charset=utf-8', body: TIME_AXIS_JS },
  '/dashboard/style.css': { type: 'text/css; charset=utf-8', body: STYLE_CSS },
  '/dashboard/icon.svg': { type: 'image/svg+xml', body: ICON_SVG },
};

const CHANGE_TOPICS: readonly ChangeTopic[] = ['ca', 'grants', 'revocations'];

export function dashboardRoutes(deps: DashboardDeps): DashboardRoutes {
  const limits: FleetLimits = { ...DEFAULT_FLEET_LIMITS, ...deps.limits };
  const feed = new FleetFeed({
    build: () => buildFleetView(deps.onError ? { ...deps, onSourceError: deps.onError } : deps, limits),
    timers: deps.timers,
    clock: deps.clock,
    ...(deps.costFactor !== undefined ? { costFactor: deps.costFactor } : {}),
    ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
    ...(deps.heartbeatMs !== undefined ? { heartbeatMs: deps.heartbeatMs } : {}),
    ...(deps.maxClients !== undefined ? { maxClients: deps.maxClients } : {}),
    ...(deps.onError ? { onError: deps.onError } : {}),
    headers: SECURITY_HEADERS,
  });
  const unsubscribe = CHANGE_TOPICS.map((topic) => deps.changes?.subscribe(topic, () => feed.refresh()));

  const send = (res: ServerResponse, status: number, type: string, body: string, cache = 'no-store') => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': cache });
    res.end(body);
  };

  return {
    handle(req, res) {
      const path = (req.url ?? '/').split('?')[0]!;
      const ours = path === '/dashboard' || path.startsWith('/dashboard/') || path.startsWith('/api/');
      if (!ours) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        send(res, 405, 'text/plain; charset=utf-8', 'method not allowed: the dashboard is read-only\n');
        return true;
      }
      if (!deps.allowRemote && !isLoopbackPeer(req.socket.remoteAddress)) {
        send(res, 403, 'text/plain; charset=utf-8', 'the dashboard answers loopback only: open it on the control plane host, or through kubectl port-forward\n');
        return true;
      }
      const asset = ASSETS[path];
      if (asset) {
        // The page itself is never cached, so a new version's page never meets an old script.
        send(res, 200, asset.type, asset.body, 'no-cache');
        return true;
      }
      if (path === '/api/fleet') {
        feed.current().then(
          (view) => send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(view, null, 2)}\n`),
          (e: unknown) => {
            deps.onError?.(e);
            send(res, 500, 'application/json; charset=utf-8', `${JSON.stringify({ error: 'the fleet view could not be built (see the control plane log)' })}\n`);
          },
        );
        return true;
      }
      if (path === '/api/events') {
        if (req.method === 'HEAD') {
          send(res, 200, 'text/event-stream; charset=utf-8', '');
          return true;
        }
        if (!feed.attach(res)) {
          res.setHeader('retry-after', '5');
          send(res, 503, 'text/plain; charset=utf-8', 'too many dashboard viewers: poll /api/fleet instead\n');
        }
        return true;
      }
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return true;
    },
    refresh: () => feed.refresh(),
    close() {
      for (const u of unsubscribe) u?.();
      feed.close();
    },
  };
}
