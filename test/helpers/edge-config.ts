// The config of a test edge proxy named `public` with a file identity in `edge/` and its server certificate in
// edge.pem / edge.key (paths relative to the config file), as the edge integration tests start it.

export interface EdgeConfigOptions {
  /** Each route as a YAML flow mapping, e.g. `{ host: a.test, pathPrefix: /, upstream: 127.0.0.1:1, spiffeId: … }`. */
  readonly routes: readonly string[];
  /** Top-level lines after the edge listener (limits, …). */
  readonly extra?: readonly string[];
  /** telemetry.accessLog (off unless given). */
  readonly accessLog?: string;
}

export function edgeConfigYaml(o: EdgeConfigOptions): string {
  return [
    'identity:',
    '  files: { certFile: edge/svid.pem, keyFile: edge/key.pem, bundleFile: edge/bundle.pem }',
    'edge:',
    '  - name: public',
    '    listen: 127.0.0.1:0',
    '    certFile: edge.pem',
    '    keyFile: edge.key',
    '    routes:',
    ...o.routes.map((r) => `      - ${r}`),
    ...(o.extra ?? []),
    'admin: { listen: 127.0.0.1:0 }',
    `telemetry: { accessLog: ${o.accessLog ?? 'off'} }`,
    '',
  ].join('\n');
}
