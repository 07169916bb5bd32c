// The control plane's two admin doors, assembled: the read-only HTTP listener (health, readiness, metrics, certs,
// config) and the operator socket (admin.sock) serving the admin routes. HTTP starts first; they stop together.

import { AdminHttp, type AdminHttpOptions } from './admin-http.js';
import { type AdminRouteDeps, adminRoutes } from './admin-routes.js';
import { AdminSocket } from './admin-socket.js';

export interface AdminSurfaceOptions {
  readonly http: AdminHttpOptions;
  readonly socketPath: string;
  readonly routes: AdminRouteDeps;
}

export interface AdminSurface {
  /** host:port the HTTP listener bound. */
  readonly address: string;
  /** Stops both doors; one failing does not keep the other open. */
  stop(): Promise<unknown>;
}

export async function startAdminSurface(opts: AdminSurfaceOptions): Promise<AdminSurface> {
  const http = new AdminHttp(opts.http);
  await http.start();
  const socket = new AdminSocket(opts.socketPath, adminRoutes(opts.routes));
  try {
    await socket.start();
  } catch (e) {
    await http.stop().catch(() => {});
    throw e;
  }
  return { address: http.address, stop: () => Promise.allSettled([socket.stop(), http.stop()]) };
}
