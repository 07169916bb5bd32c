// The control plane's two admin doors, assembled: the read-only HTTP listener (health, readiness, metrics, certs,
// config, and the fleet dashboard when given its sources) and the operator socket (admin.sock) serving the admin
// routes. HTTP starts first; they stop together.

import { AdminHttp, type AdminHttpOptions } from './admin-http.js';
import { type AdminRouteDeps, adminRoutes } from './admin-routes.js';
import { AdminSocket } from './admin-socket.js';
import { type DashboardDeps, dashboardRoutes } from './dashboard/dashboard-routes.js';

export interface AdminSurfaceOptions {
  readonly http: AdminHttpOptions;
  readonly socketPath: string;
  readonly routes: AdminRouteDeps;
  /** The fleet dashboard's sources (GET /dashboard, /api/fleet, /api/events); absent: no dashboard. */
  readonly dashboard?: DashboardDeps;
}

export interface AdminSurface {
  /** host:port the HTTP listener bound. */
  readonly address: string;
  /** Sends dashboard viewers a fresh view if anything changed (a no-op without a dashboard). */
  refreshDashboard(): void;
  /** Stops both doors; one failing does not keep the other open. */
  stop(): Promise<unknown>;
}

export async function startAdminSurface(opts: AdminSurfaceOptions): Promise<AdminSurface> {
  const dashboard = opts.dashboard ? dashboardRoutes(opts.dashboard) : undefined;
  const http = new AdminHttp(dashboard ? { ...opts.http, routes: dashboard.handle } : opts.http);
  const stopHttp = () => {
    dashboard?.close();
    return http.stop();
  };
  try {
    await http.start();
  } catch (e) {
    dashboard?.close();
    throw e;
  }
  const socket = new AdminSocket(opts.socketPath, adminRoutes(opts.routes));
  try {
    await socket.start();
  } catch (e) {
    await stopHttp().catch(() => {});
    throw e;
  }
  return { address: http.address, refreshDashboard: () => dashboard?.refresh(), stop: () => Promise.allSettled([socket.stop(), stopHttp()]) };
}
