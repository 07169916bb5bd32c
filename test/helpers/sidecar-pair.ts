// Two real `tessera proxy` processes with file identities from one test CA, the way most integration tests of a
// path through the mesh start: `api` serves inbound listeners in front of the test's app, `web` calls it through
// outbound listeners, and a policy lets web call api (or the test's own policies).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from './proxy-process.js';
import { TestCa } from './test-ca.js';

export interface SidecarPairOptions {
  readonly trustDomain: string;
  readonly apiId: string;
  readonly webId: string;
  /** The api sidecar's inbound listeners, one YAML flow mapping each (`{ name: grpc, listen: ..., ... }`). */
  readonly inbound: readonly string[];
  /** The web sidecar's outbound listeners, given the api sidecar's listener ports (`inbound/<name>`). */
  readonly outbound: (apiPorts: ReadonlyMap<string, number>) => readonly string[];
  /** Policy files by name; absent: one that allows web to call api. */
  readonly policies?: Readonly<Record<string, string>>;
}

export interface SidecarPair {
  readonly api: ProxyProcess;
  readonly web: ProxyProcess;
  /** Stops web, then api. */
  stop(): Promise<void>;
}

export function allowPolicy(apiId: string, webId: string): string {
  return `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${apiId}\n  action: ALLOW\n  rules:\n    - from: [${webId}]\n`;
}

/** Writes the SVIDs, the policies and both configs under `dir` and starts api, then web. Access logs off. */
export async function startSidecarPair(dir: string, o: SidecarPairOptions): Promise<SidecarPair> {
  const ca = await TestCa.create({ trustDomain: o.trustDomain });
  await writeSvidFiles(ca, o.apiId, join(dir, 'api'));
  await writeSvidFiles(ca, o.webId, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  for (const [name, yaml] of Object.entries(o.policies ?? { 'allow.yaml': allowPolicy(o.apiId, o.webId) })) await writeFile(join(dir, 'policies', name), yaml);
  const listeners = (key: string, items: readonly string[]) => `${key}:\n${items.map((l) => `  - ${l}\n`).join('')}`;
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\n${listeners('inbound', o.inbound)}authorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  const api = await startProxyProcess(join(dir, 'api.yaml'));
  let web: ProxyProcess;
  try {
    await writeFile(
      join(dir, 'web.yaml'),
      `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\n${listeners('outbound', o.outbound(api.ports))}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
    );
    web = await startProxyProcess(join(dir, 'web.yaml'));
  } catch (e) {
    await api.stop();
    throw e;
  }
  return {
    api,
    web,
    async stop() {
      await web.stop();
      await api.stop();
    },
  };
}
