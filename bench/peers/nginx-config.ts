// nginx configurations for the peer pair, the app and the handshake listener, as in reference/peer-baseline.md.
// Every file path (pid, logs, temp) lives in the run's work directory; one worker each; access logs off.

export interface NginxCommon {
  /** The work directory of this nginx instance (pid, error log, temp paths). */
  readonly prefix: string;
}

function header(c: NginxCommon, name: string): string {
  return [
    'worker_processes 1;',
    `pid ${c.prefix}/${name}.pid;`,
    `error_log ${c.prefix}/${name}-error.log warn;`,
    'events { worker_connections 4096; multi_accept on; }',
    '',
  ].join('\n');
}

function httpOpen(c: NginxCommon, name: string): string[] {
  return [
    'http {',
    '  access_log off;',
    '  default_type text/plain;',
    `  client_body_temp_path ${c.prefix}/${name}-temp-body;`,
    `  proxy_temp_path ${c.prefix}/${name}-temp-proxy;`,
    `  fastcgi_temp_path ${c.prefix}/${name}-temp-fastcgi;`,
    `  uwsgi_temp_path ${c.prefix}/${name}-temp-uwsgi;`,
    `  scgi_temp_path ${c.prefix}/${name}-temp-scgi;`,
    // The default of 1000 requests per connection would force a re-handshake every 1000 requests per pooled conn.
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 75s;',
  ];
}

/** The upstream app: `return 200 "ok\n"`, one worker. With `http2`, the listener speaks h2c (prior knowledge). */
export function nginxAppConfig(c: NginxCommon, port: number, opts: { http2?: boolean } = {}): string {
  return [
    header(c, 'app'),
    ...httpOpen(c, 'app'),
    '  server {',
    `    listen 127.0.0.1:${port}${opts.http2 ? ' http2' : ''} reuseport;`,
    '    location / { return 200 "ok\\n"; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NginxClientProxy extends NginxCommon {
  readonly listenPort: number;
  /** The server-side proxy (mTLS). */
  readonly upstreamPort: number;
  readonly chainFile: string;
  readonly keyFile: string;
  readonly rootFile: string;
  /** The DNS SAN the server must present (nginx cannot check a URI SAN). */
  readonly serverName: string;
  readonly http2In?: boolean;
  /** Edge mode: terminate TLS from outside clients with this certificate (no client certificate asked for). */
  readonly tlsIn?: { readonly chainFile: string; readonly keyFile: string };
}

/** Client side: plaintext HTTP in (TLS in edge mode), mTLS out over a keep-alive pool, server certificate verified. */
export function nginxClientProxyConfig(c: NginxClientProxy): string {
  const tlsIn = c.tlsIn ? [`    ssl_certificate ${c.tlsIn.chainFile};`, `    ssl_certificate_key ${c.tlsIn.keyFile};`, '    ssl_protocols TLSv1.2 TLSv1.3;'] : [];
  return [
    header(c, 'client'),
    ...httpOpen(c, 'client'),
    '  upstream mesh_server {',
    `    server 127.0.0.1:${c.upstreamPort};`,
    '    keepalive 1024;',
    '    keepalive_requests 1000000;',
    '    keepalive_timeout 75s;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${c.listenPort}${c.tlsIn ? ' ssl' : ''}${c.http2In ? ' http2' : ''};`,
    ...tlsIn,
    '    location / {',
    '      proxy_pass https://mesh_server;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    `      proxy_ssl_certificate ${c.chainFile};`,
    `      proxy_ssl_certificate_key ${c.keyFile};`,
    `      proxy_ssl_trusted_certificate ${c.rootFile};`,
    '      proxy_ssl_verify on;',
    // Default depth 1 would reject the leaf → intermediate → root chain.
    '      proxy_ssl_verify_depth 2;',
    `      proxy_ssl_name ${c.serverName};`,
    '      proxy_ssl_server_name on;',
    '      proxy_ssl_session_reuse on;',
    // nginx 1.22 leaves TLS 1.3 out of the proxy_ssl_protocols default.
    '      proxy_ssl_protocols TLSv1.2 TLSv1.3;',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NginxServerProxy extends NginxCommon {
  readonly listenPort: number;
  readonly appPort: number;
  /** Plaintext stub_status listener, to count accepted (TLS) connections. */
  readonly statusPort: number;
  readonly chainFile: string;
  readonly keyFile: string;
  readonly rootFile: string;
}

/**
 * Server side: mTLS in (client certificate required, chain verified to the root), plaintext keep-alive to the app.
 * nginx has no SPIFFE ID check (no URI SAN variable): it accepts any SVID of the trust domain — noted in results.
 */
export function nginxServerProxyConfig(c: NginxServerProxy): string {
  return [
    header(c, 'server'),
    ...httpOpen(c, 'server'),
    '  upstream local_app {',
    `    server 127.0.0.1:${c.appPort};`,
    '    keepalive 1024;',
    '    keepalive_requests 1000000;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${c.listenPort} ssl;`,
    `    ssl_certificate ${c.chainFile};`,
    `    ssl_certificate_key ${c.keyFile};`,
    `    ssl_client_certificate ${c.rootFile};`,
    '    ssl_verify_client on;',
    '    ssl_verify_depth 2;',
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    '    location / {',
    '      proxy_pass http://local_app;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '    }',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${c.statusPort};`,
    '    location = /status { stub_status; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NginxHandshakeServer extends NginxCommon {
  readonly listenPort: number;
  readonly chainFile: string;
  readonly keyFile: string;
  readonly rootFile: string;
}

/** A 1-worker mTLS listener that answers one request and closes: the peer in the handshake scenario. */
export function nginxHandshakeServerConfig(c: NginxHandshakeServer): string {
  return [
    header(c, 'handshake'),
    ...httpOpen(c, 'handshake'),
    '  server {',
    `    listen 127.0.0.1:${c.listenPort} ssl;`,
    `    ssl_certificate ${c.chainFile};`,
    `    ssl_certificate_key ${c.keyFile};`,
    `    ssl_client_certificate ${c.rootFile};`,
    '    ssl_verify_client on;',
    '    ssl_verify_depth 2;',
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    '    ssl_session_tickets on;',
    '    keepalive_timeout 0;',
    '    location / { return 200 "ok\\n"; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Parses stub_status: "Active connections: N\nserver accepts handled requests\n A H R\n...". */
export function parseStubStatus(text: string): { accepts: number; handled: number; requests: number } | null {
  const m = /server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)/.exec(text);
  return m ? { accepts: Number(m[1]), handled: Number(m[2]), requests: Number(m[3]) } : null;
}
