// The stage of the HTTP/2 hostile-input tests: two real proxy processes with files identities from one test CA.
// `api` has the inbound listeners given (mTLS from mesh peers to the test's apps); `web` has the outbound listeners
// and edge routes given, which may point at api's inbound ports. Policies: web may call api, anyone may call web's
// edge, both on /public/** only. Each test file writes only what differs: its apps, listeners and routes.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from './proxy-process.js';
import { makeTempDir } from './run.js';
import { TestCa } from './test-ca.js';

export const STAGE_TD = 'example.org';
export const STAGE_API = `spiffe://${STAGE_TD}/ns/default/sa/api`;
export const STAGE_WEB = `spiffe://${STAGE_TD}/ns/default/sa/web`;

export interface H2StageSpec {
  /** api's inbound listeners: name → the app port it forwards to (protocol http2). */
  readonly inbound: Readonly<Record<string, number>>;
  /** web's `outbound:` list entries (YAML flow maps, one per line), given api's inbound port by listener name. */
  readonly outbound?: (inboundPort: (name: string) => number) => readonly string[];
  /** web's edge `routes:` entries (YAML flow maps), given api's inbound port by listener name; none: no edge. */
  readonly edgeRoutes?: (inboundPort: (name: string) => number) => readonly string[];
}

export interface H2Stage {
  readonly api: ProxyProcess;
  readonly web: ProxyProcess;
  /** web's SVID and key: the client credentials of a mesh peer calling api's inbound listeners. */
  readonly webCred: { readonly cert: string; readonly key: string };
  stop(): Promise<void>;
}

const allow = (name: string, selector: string, from: string) =>
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${selector}\n  action: ALLOW\n  rules:\n    - from: ["${from}"]\n      to: { paths: ["/public/**"] }\n---\n`;

const common = (name: string) =>
  `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nauthorization: { policiesDir: policies, defaultAction: deny }\n`;

export async function startH2Stage(spec: H2StageSpec): Promise<H2Stage> {
  const { dir, cleanup } = await makeTempDir();
  const ca = await TestCa.create({ trustDomain: STAGE_TD });
  await writeSvidFiles(ca, STAGE_API, join(dir, 'api'));
  await writeSvidFiles(ca, STAGE_WEB, join(dir, 'web'));
  const webCred = { cert: await readFile(join(dir, 'web', 'svid.pem'), 'utf8'), key: await readFile(join(dir, 'web', 'key.pem'), 'utf8') };
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'all.yaml'), allow('api-allow-web', STAGE_API, STAGE_WEB) + allow('edge-allow-anyone', STAGE_WEB, 'unauthenticated'));
  const inbound = Object.entries(spec.inbound).map(([name, app]) => `  - { name: ${name}, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app}, protocol: http2 }\n`);
  await writeFile(join(dir, 'api.yaml'), `${common('api')}inbound:\n${inbound.join('')}`);
  const api = await startProxyProcess(join(dir, 'api.yaml'));
  const inboundPort = (name: string) => {
    const port = api.ports.get(`inbound/${name}`);
    if (port === undefined) throw new Error(`api has no inbound listener ${name}`);
    return port;
  };
  const outbound = spec.outbound?.(inboundPort) ?? [];
  const routes = spec.edgeRoutes?.(inboundPort);
  const edge = routes
    ? `edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: web/svid.pem\n    keyFile: web/key.pem\n    authorize: true\n    routes:\n${routes.map((r) => `      - ${r}\n`).join('')}`
    : '';
  await writeFile(join(dir, 'web.yaml'), `${common('web')}${outbound.length > 0 ? `outbound:\n${outbound.map((o) => `  - ${o}\n`).join('')}` : ''}${edge}`);
  const web = await startProxyProcess(join(dir, 'web.yaml')).catch(async (e: unknown) => {
    await api.stop();
    throw e;
  });
  return {
    api,
    web,
    webCred,
    async stop() {
      await web.stop();
      await api.stop();
      await cleanup();
    },
  };
}
