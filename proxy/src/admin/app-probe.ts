// Runs one of the app's kubelet probes against the app on loopback, for GET /app-health/<container>/<kind> on the
// admin listener (the injector rewrites httpGet/tcpSocket probes to it): the kubelet cannot reach an app that
// listens on 127.0.0.1, nor pass the sidecar's mTLS inbound port. Only the outcome is returned, never the body.

import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { http } from '../../../shared-io/node-http.js';
import type { Timers } from '../../../shared-io/timers.js';

export interface AppProbe {
  readonly port: number;
  /** tcpSocket probe: success is a completed TCP connect. */
  readonly tcp: boolean;
  readonly path: string;
  readonly scheme: 'HTTP' | 'HTTPS';
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** The app did not answer (refused, reset, timed out): the kubelet sees a failure. */
export const APP_PROBE_FAILED = 503;

const LOOPBACK = '127.0.0.1';

/**
 * The HTTP status for the kubelet: the app's own status for an HTTP probe (the kubelet counts 200-399 as
 * success, like for a direct probe), 200 for a TCP probe that connected, 503 when the app did not answer. The
 * probe's timeout runs on `timers` and holds the process while it waits, as it always has.
 */
export function runAppProbe(p: AppProbe, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>): Promise<number> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      resolve(status);
    };
    const timer = timers.setTimeout(
      () => {
        abort();
        done(APP_PROBE_FAILED);
      },
      p.timeoutMs,
      'keep-alive',
    );
    let abort = () => {};
    if (p.tcp) {
      const socket = connect(p.port, LOOPBACK);
      abort = () => socket.destroy();
      socket.once('connect', () => {
        socket.destroy();
        done(200);
      });
      socket.once('error', () => done(APP_PROBE_FAILED));
      return;
    }
    // Like the kubelet: no certificate check on HTTPS probes, no keep-alive, the probe's own headers.
    const options = { host: LOOPBACK, port: p.port, path: p.path, method: 'GET', headers: { 'user-agent': 'kube-probe (tessera sidecar)', ...p.headers }, agent: false as const };
    const req = p.scheme === 'HTTPS' ? httpsRequest({ ...options, rejectUnauthorized: false }) : http.request(options);
    abort = () => req.destroy();
    req.once('response', (res) => {
      res.resume();
      done(res.statusCode ?? APP_PROBE_FAILED);
      req.destroy();
    });
    req.once('error', () => done(APP_PROBE_FAILED));
    req.end();
  });
}
