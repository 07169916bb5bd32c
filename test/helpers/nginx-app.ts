// nginx as a test app (a strict, independent HTTP server): one master-less process under `dir`, on a free loopback
// port, answering every request with `return 200 "<body>"` (nginx variables allowed).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { freePort } from './free-port.js';
import { startTestProcess } from './ready-process.js';

export interface NginxAppOptions {
  /** The answer's body, in nginx's `return` syntax (e.g. `ok $request_uri\\n`). */
  readonly body: string;
  /** Serve h2c (HTTP/2 with prior knowledge) instead of HTTP/1.x. */
  readonly http2?: boolean;
  /** nginx's `keepalive_requests`: a connection (HTTP/2 included) ends after this many requests; default nginx's. */
  readonly requestsPerConnection?: number;
  /** nginx's access log to `<dir>/logs/access.log` (default off). */
  readonly accessLog?: boolean;
}

export async function startNginxApp(dir: string, name: string, o: NginxAppOptions): Promise<{ readonly port: number; readonly process: SupervisedProcess }> {
  const port = await freePort();
  const prefix = join(dir, name);
  await mkdir(join(prefix, 'logs'), { recursive: true });
  await writeFile(
    join(prefix, 'nginx.conf'),
    [
      'master_process off;',
      `pid ${prefix}/nginx.pid;`,
      `error_log ${prefix}/logs/error.log;`,
      'events { worker_connections 256; }',
      'http {',
      o.accessLog ? `  access_log ${prefix}/logs/access.log;` : '  access_log off;',
      ...(o.requestsPerConnection === undefined ? [] : [`  keepalive_requests ${o.requestsPerConnection};`]),
      `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
      `  server { listen 127.0.0.1:${port}${o.http2 ? ' http2' : ''}; location / { return 200 "${o.body}"; } }`,
      '}',
      '',
    ].join('\n'),
  );
  const process = await startTestProcess({ name, command: 'nginx', args: ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], ready: { port }, readyTimeoutMs: 10_000 });
  return { port, process };
}
