// deploy/k8s, rendered without a cluster: every object validates against the Kubernetes 1.36 OpenAPI schemas
// (kubernetes-models) with no unknown field, references resolve, the webhook's CA bundle matches its serving
// certificate, the demo pods inject cleanly, and (where kubectl exists) kustomize itself renders the same.

import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { compileIdPattern } from '../../../common/spiffe/match.js';
import { parseControlPlaneConfig } from '../../../control-plane/src/config/cp-config.js';
import { ANNOTATION, parseOutbound } from '../../../control-plane/src/injector/annotations.js';
import { INJECTOR_DEFAULTS, resolveInjectorConfig } from '../../../control-plane/src/injector/injector-config.js';
import { parseInjectorFileConfig } from '../../../control-plane/src/injector/injector-file-config.js';
import { planInjection } from '../../../control-plane/src/injector/plan-injection.js';
import { jsonPatchFor } from '../../../control-plane/src/injector/pod-patch.js';
import { mutatingWebhookConfiguration } from '../../../control-plane/src/injector/webhook-configuration.js';
import { testBundlePem } from '../../helpers/injector-fixtures.js';
import { applyJsonPatch } from '../../helpers/json-patch.js';
import { hasKubectl } from '../../helpers/kubectl.js';
import { makeTempDir, REPO_ROOT, run } from '../../helpers/run.js';
import { validateK8sObject } from './k8s-schema.js';
import { type K8sObject, renderKustomization } from './kustomize-render.js';

const K8S = join(REPO_ROOT, 'deploy/k8s');
const KUSTOMIZATIONS = ['base', 'install', 'ha-postgres', 'examples/policies', 'examples/demo'];

let tmp: string;
let cleanup: () => Promise<void>;
const rendered = new Map<string, K8sObject[]>();

beforeAll(async () => {
  ({ dir: tmp, cleanup } = await makeTempDir());
  // A copy of the tree, so the real gen-webhook-tls.sh can write its keys without touching the work tree.
  cpSync(K8S, join(tmp, 'k8s'), { recursive: true });
  const r = await run('bash', [join(tmp, 'k8s/install/gen-webhook-tls.sh')]);
  expect(r.code, r.stderr).toBe(0);
  for (const k of KUSTOMIZATIONS) rendered.set(k, renderKustomization(join(tmp, 'k8s', k)));
});
afterAll(async () => cleanup?.());

interface ContainerView {
  name: string;
  image: string;
  args?: string[];
  imagePullPolicy?: string;
  ports: { name: string; containerPort: number }[];
  securityContext: unknown;
  readinessProbe: { httpGet: { path: string } };
  volumeMounts: { mountPath: string }[];
  [extra: string]: unknown;
}
interface PodSpecView {
  securityContext: unknown;
  serviceAccountName?: string;
  containers: ContainerView[];
  volumes: { name: string; configMap?: { name: string; optional?: boolean }; secret?: { secretName: string }; emptyDir?: { sizeLimit?: string } }[];
}
interface Views {
  Deployment: { spec: { replicas: unknown; template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: PodSpecView } } };
  Service: { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } };
  PodDisruptionBudget: { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
  MutatingWebhookConfiguration: { webhooks: { clientConfig: { caBundle: string; service: { name: string; port: number } } }[] };
  Secret: { type: string; data: Record<string, string> };
  ConfigMap: { data: Record<string, string> };
  ClusterRole: { rules: unknown[] };
  ClusterRoleBinding: { subjects: unknown[] };
  Namespace: { metadata: { labels: Record<string, string> } };
}

const all = (k: string) => rendered.get(k)!;
function find<K extends keyof Views>(k: string, kind: K, name: string): K8sObject & Views[K] {
  const o = all(k).find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not in ${k}`);
  return o as K8sObject & Views[K];
}

describe('every manifest validates against the Kubernetes OpenAPI schema', () => {
  test.each(KUSTOMIZATIONS)('%s', (k) => {
    expect(all(k).length).toBeGreaterThan(0);
    for (const o of all(k)) expect(validateK8sObject(o).errors, `${o.kind}/${o.metadata.name}`).toEqual([]);
  });
  test('the validator is not a rubber stamp: bad types, enums, unknown fields and beta APIs fail', () => {
    const d = structuredClone(find('base', 'Deployment', 'tessera-control-plane'));
    d.spec.replicas = 'two';
    expect(validateK8sObject(d).ok).toBe(false);
    const e = structuredClone(find('base', 'Deployment', 'tessera-control-plane'));
    e.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
    expect(validateK8sObject(e).ok).toBe(false);
    const u = structuredClone(find('base', 'Deployment', 'tessera-control-plane'));
    u.spec.template.spec.containers[0].readinesProbe = {};
    expect(validateK8sObject(u).errors.join()).toContain('unknown field /spec/template/spec/containers/0/readinesProbe');
    expect(validateK8sObject({ ...find('base', 'PodDisruptionBudget', 'tessera-control-plane'), apiVersion: 'policy/v1beta1' }).ok).toBe(false);
    expect(validateK8sObject({ apiVersion: 'tessera.dev/v1', kind: 'AuthorizationPolicy', metadata: { name: 'x' } }).ok).toBe(false);
  });
});

describe('install: control plane, injector, RBAC, webhook', () => {
  const DEPLOYMENTS = ['tessera-control-plane', 'tessera-injector'];
  /** Created by the operator from the CA directory (docs/kubernetes.md, Install step 3), never by kustomize. */
  const EXTERNAL = { secrets: ['tessera-ca'], configMaps: ['tessera-trust-bundle'] };

  test('namespaced objects land in tessera-system; only the CA Secret and the trust bundle are external', () => {
    const objs = all('install');
    for (const o of objs) if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(o.kind)) expect(o.metadata.namespace).toBe('tessera-system');
    for (const name of DEPLOYMENTS) {
      const dep = find('install', 'Deployment', name);
      expect(dep.spec.replicas).toBe(2);
      for (const v of dep.spec.template.spec.volumes) {
        const cm = v.configMap;
        const secret = v.secret;
        if (cm && !cm.optional && !EXTERNAL.configMaps.includes(cm.name)) expect(objs.some((o) => o.kind === 'ConfigMap' && o.metadata.name === cm.name), cm.name).toBe(true);
        if (secret && !EXTERNAL.secrets.includes(secret.secretName)) expect(objs.some((o) => o.kind === 'Secret' && o.metadata.name === secret.secretName)).toBe(true);
      }
    }
    expect(objs.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)).toEqual(['tessera-injector-tls']);
  });

  test('each Service and PDB selects exactly one Deployment, by labels and ports that exist', () => {
    const selected = (selector: Record<string, string>) => DEPLOYMENTS.filter((d) => Object.entries(selector).every(([k, v]) => find('install', 'Deployment', d).spec.template.metadata.labels[k] === v));
    const expected: Record<string, string> = { 'tessera-control-plane': 'tessera-control-plane', 'tessera-injector': 'tessera-injector' };
    for (const [svcName, depName] of Object.entries(expected)) {
      const svc = find('install', 'Service', svcName);
      expect(selected(svc.spec.selector)).toEqual([depName]);
      const ports = find('install', 'Deployment', depName).spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name);
      for (const p of svc.spec.ports) expect(ports).toContain(p.targetPort);
      const pdb = find('install', 'PodDisruptionBudget', depName);
      expect(selected(pdb.spec.selector.matchLabels)).toEqual([depName]);
      expect(pdb.spec.minAvailable).toBe(1);
    }
    const webhook = find('install', 'MutatingWebhookConfiguration', 'tessera-sidecar-injector').webhooks[0].clientConfig.service;
    expect(find('install', 'Service', webhook.name).spec.ports.map((p: { port: number }) => p.port)).toContain(webhook.port);
  });

  test.each(DEPLOYMENTS)('%s runs restricted: non-root, no privilege, read-only root, readiness on /ready', (name) => {
    const spec = find('install', 'Deployment', name).spec.template.spec;
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = spec.containers[0];
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.readinessProbe.httpGet.path).toBe('/ready');
    expect(find('install', 'Deployment', name).spec.template.metadata.annotations['tessera.dev/inject']).toBe('false');
  });

  test('the injector stands alone: no CA, no API token, no webhook in the control plane; rolls and drains one at a time', () => {
    const inj = find('install', 'Deployment', 'tessera-injector') as K8sObject & Views['Deployment'] & { spec: { strategy: unknown } };
    const spec = inj.spec.template.spec as PodSpecView & { automountServiceAccountToken?: boolean };
    expect(spec.volumes.some((v) => v.secret?.secretName === 'tessera-ca')).toBe(false);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.containers[0]!.args).toEqual(['injector', '--config', '/etc/tessera/injector/injector.yaml']);
    expect(inj.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(spec.containers[0]!.readinessProbe.httpGet).toMatchObject({ path: '/ready', port: 'webhook', scheme: 'HTTPS' });
    expect(spec.containers[0]!['lifecycle']).toEqual({ preStop: { sleep: { seconds: 5 } } });
    const cp = find('install', 'Deployment', 'tessera-control-plane').spec.template.spec;
    expect(cp.containers[0]!.ports.map((p) => p.name)).not.toContain('webhook');
    expect(parseYaml(find('install', 'ConfigMap', 'tessera-control-plane').data['control-plane.yaml']).injector).toBeUndefined();
    // The webhook: fail closed, bounded, never for tessera-system (the injector itself) or kube-system.
    const w = find('install', 'MutatingWebhookConfiguration', 'tessera-sidecar-injector').webhooks[0] as unknown as {
      failurePolicy: string;
      timeoutSeconds: number;
      namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
    };
    expect(w.failurePolicy).toBe('Fail');
    expect(w.timeoutSeconds).toBe(5);
    expect(w.namespaceSelector.matchExpressions).toContainEqual(expect.objectContaining({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: expect.arrayContaining(['tessera-system', 'kube-system']) }));
    expect(find('install', 'Namespace', 'tessera-system').metadata.labels['tessera.dev/inject']).toBe('disabled');
  });

  test('ha-postgres: three replicas on the database Secret, no CA Secret, a config the control plane accepts', () => {
    const dep = find('ha-postgres', 'Deployment', 'tessera-control-plane');
    expect(dep.spec.replicas).toBe(3);
    const spec = dep.spec.template.spec;
    expect(spec.volumes.some((v) => v.secret?.secretName === 'tessera-ca')).toBe(false);
    expect(spec.volumes.find((v) => v.name === 'postgres')?.secret?.secretName).toBe('tessera-postgres');
    const mounts = spec.containers[0]!.volumeMounts;
    expect(mounts.map((m) => m.mountPath)).toContain('/etc/tessera/db');
    expect(mounts.map((m) => m.mountPath)).not.toContain('/var/lib/tessera/ca');
    const text = find('ha-postgres', 'ConfigMap', 'tessera-control-plane').data['control-plane.yaml'] as string;
    const cfg = parseControlPlaneConfig(text, '/etc/tessera/config/control-plane.yaml', {});
    expect(cfg.store).toMatchObject({ kind: 'postgres', source: { urlFile: '/etc/tessera/db/url' } });
    // Everything else is the install's config, but audit: the shared table keeps its 400 days (the database is the
    // trail's home), and the emptyDir holds only audit.log, cut at the default 64 MiB (128 MiB at most, of 256Mi).
    const { audit: baseAudit, ...base } = parseYaml(find('install', 'ConfigMap', 'tessera-control-plane').data['control-plane.yaml'] as string) as Record<string, unknown>;
    const { store: _s, ...rest } = parseYaml(text) as Record<string, unknown>;
    expect(rest).toEqual(base);
    expect(baseAudit).toEqual({ keep: '2d', logMaxBytes: 33_554_432 });
    expect(cfg.audit).toEqual({ keepMs: 400 * 86_400_000, logMaxBytes: 64 * 1024 * 1024 });
  });

  test('the data emptyDir outlasts what the shipped configs write to it: audit.log and audit.log.1 take at most half its sizeLimit (audit 53c F4)', () => {
    const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? Number.NaN) * 1024 * 1024;
    for (const k of ['install', 'ha-postgres']) {
      const spec = find(k, 'Deployment', 'tessera-control-plane').spec.template.spec;
      const limit = mib(spec.volumes.find((v) => v.name === 'data')?.emptyDir?.sizeLimit ?? '');
      const cfg = parseControlPlaneConfig(find(k, 'ConfigMap', 'tessera-control-plane').data['control-plane.yaml'] as string, '/etc/tessera/config/control-plane.yaml', {});
      expect(cfg.audit.logMaxBytes, k).toBeGreaterThan(0);
      expect(2 * cfg.audit.logMaxBytes, k).toBeLessThanOrEqual(limit / 2);
    }
  });

  test('RBAC is least privilege: create tokenreviews, read the issuer discovery, list/watch slices and pods, nothing else', () => {
    const role = find('install', 'ClusterRole', 'tessera-control-plane');
    expect(role.rules).toEqual([
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { nonResourceURLs: ['/.well-known/openid-configuration', '/openid/v1/jwks'], verbs: ['get'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
    ]);
    expect(all('install').some((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toBe(false);
    expect(find('install', 'ClusterRoleBinding', 'tessera-control-plane').subjects).toEqual([
      { kind: 'ServiceAccount', name: 'tessera-control-plane', namespace: 'tessera-system' },
    ]);
  });

  test('the webhook object is the generated one, and its caBundle verifies the serving certificate for the Service name', () => {
    const base = find('base', 'MutatingWebhookConfiguration', 'tessera-sidecar-injector');
    expect(base).toEqual(mutatingWebhookConfiguration());
    const installed = find('install', 'MutatingWebhookConfiguration', 'tessera-sidecar-injector');
    const caPem = Buffer.from(installed.webhooks[0].clientConfig.caBundle, 'base64').toString();
    expect(installed).toEqual(mutatingWebhookConfiguration({ caBundlePem: caPem }));
    const tlsSecret = find('install', 'Secret', 'tessera-injector-tls');
    expect(tlsSecret.type).toBe('kubernetes.io/tls');
    const leaf = new X509Certificate(Buffer.from(tlsSecret.data['tls.crt'], 'base64'));
    const ca = new X509Certificate(caPem);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkHost('tessera-injector.tessera-system.svc')).toBe('tessera-injector.tessera-system.svc');
    expect(Buffer.from(tlsSecret.data['tls.key'], 'base64').toString()).toContain('PRIVATE KEY');
  });

  test("the injector's config file is valid, its files are mounted, it names the Deployment's image, and the sidecar gets the measured resources", () => {
    const cm = find('install', 'ConfigMap', 'tessera-injector');
    const cfg = parseInjectorFileConfig(cm.data['injector.yaml'], '/etc/tessera/injector/injector.yaml', { version: '0.1.0' });
    expect(cfg.listen).toBe('0.0.0.0:9443');
    const dep = find('install', 'Deployment', 'tessera-injector').spec.template.spec;
    const mounts = dep.containers[0].volumeMounts.map((m: { mountPath: string }) => m.mountPath);
    for (const f of [cfg.certFile, cfg.keyFile, cfg.bundleFile]) expect(mounts).toContain(dirname(f));
    expect(cfg.settings.proxyImage).toBe(dep.containers[0].image);
    expect(dep.containers[0]!.ports.find((p) => p.name === 'webhook')?.containerPort).toBe(9443);
    // The same figures as the defaults, which docs/kubernetes.md derives from measured idle RSS (~101 MiB).
    expect(cfg.settings.resources).toEqual(INJECTOR_DEFAULTS.resources);
  });
});

describe('examples', () => {
  test('demo pods inject cleanly (as the webhook would) and stay schema-valid', async () => {
    const ns = find('examples/demo', 'Namespace', 'tessera-demo');
    expect(ns.metadata.labels['tessera.dev/inject']).toBe('enabled');
    const bundlePem = await testBundlePem();
    const config = resolveInjectorConfig({ proxyImage: 'tessera:0.1.0', controlPlaneAddress: 'tessera-control-plane.tessera-system.svc:8443', version: '0.1.0' });
    let probed = 0;
    for (const name of ['api', 'web']) {
      const dep = find('examples/demo', 'Deployment', name);
      const template = dep.spec.template;
      const plan = planInjection({ pod: template, namespaceLabels: ns.metadata.labels }, { config, bundlePem });
      if (plan.action !== 'inject') throw new Error(`${name} not injected: ${plan.reason}`);
      const injected = applyJsonPatch(template, jsonPatchFor(plan.pod, plan.additions));
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...injected.metadata, name, namespace: 'tessera-demo' }, spec: injected.spec };
      expect(validateK8sObject(pod).errors).toEqual([]);
      const svc = find('examples/demo', 'Service', name);
      expect(svc.spec.ports[0].targetPort).toBe(15006);
      // Apps listen on loopback only: the sidecar's inbound listener is the one way in.
      for (const c of dep.spec.template.spec.containers) if (c.args) expect(c.args.join(' ')).toContain('127.0.0.1:');
      // So the kubelet's probes of those apps go through the sidecar (rewritten at injection).
      for (const c of pod.spec.containers as unknown as { name: string; readinessProbe?: { httpGet: { port: number; path: string } } }[]) {
        if (!c.readinessProbe) continue;
        expect(c.readinessProbe.httpGet).toMatchObject({ port: 15000, path: `/app-health/${c.name}/readiness` });
        probed++;
      }
    }
    expect(probed).toBeGreaterThan(0);
    const web = find('examples/demo', 'Deployment', 'web').spec.template.metadata.annotations;
    const [api] = parseOutbound({ [ANNOTATION.outbound]: web[ANNOTATION.outbound] }, [8080]);
    const apiSvc = find('examples/demo', 'Service', 'api');
    expect(api!.upstream).toBe(`${apiSvc.metadata.name}.${apiSvc.metadata.namespace}.svc:${apiSvc.spec.ports[0].port}`);
    expect(api!.spiffeId).toBe(`spiffe://cluster.local/ns/tessera-demo/sa/${find('examples/demo', 'Deployment', 'api').spec.template.spec.serviceAccountName}`);
  });

  test('example AuthorizationPolicies are well-formed (DESIGN section 5) and all shipped in the ConfigMap', () => {
    const dir = join(K8S, 'examples/policies');
    const files = readdirSync(dir).filter((f) => f !== 'kustomization.yaml' && f.endsWith('.yaml'));
    const cm = find('examples/policies', 'ConfigMap', 'tessera-policies');
    expect(cm.metadata.namespace).toBe('tessera-system');
    expect(Object.keys(cm.data).sort()).toEqual(files.sort());
    for (const f of files) {
      const p = parseYaml(readFileSync(join(dir, f), 'utf8'));
      expect(p.apiVersion).toBe('tessera.dev/v1');
      expect(p.kind).toBe('AuthorizationPolicy');
      expect(`${p.metadata.name}.yaml`).toBe(f);
      expect(['ALLOW', 'DENY']).toContain(p.spec.action);
      expect(['enforce', 'audit']).toContain(p.spec.mode);
      compileIdPattern(p.spec.selector);
      for (const r of p.spec.rules) for (const from of r.from) compileIdPattern(from);
    }
  });
});

describe('gen-webhook-tls.sh', () => {
  test('renew keeps the CA; --rotate-ca bundles old and new; --drop-old-ca keeps only the new', async () => {
    const script = join(K8S, 'install/gen-webhook-tls.sh');
    const out = join(tmp, 'rotation');
    const sh = (...args: string[]) => run('bash', [script, ...args], { env: { ...process.env, OUT: out } });
    const certs = (f: string) => (readFileSync(join(out, f), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length;
    expect((await sh('--rotate-ca')).code).toBe(1);
    expect((await sh()).code).toBe(0);
    const ca1 = readFileSync(join(out, 'ca.pem'), 'utf8');
    const leaf1 = readFileSync(join(out, 'tls.crt'), 'utf8');
    expect((await sh()).code).toBe(0);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(ca1);
    expect(readFileSync(join(out, 'tls.crt'), 'utf8')).not.toBe(leaf1);
    expect((await sh('--rotate-ca')).code).toBe(0);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).not.toBe(ca1);
    expect(certs('ca.crt')).toBe(2);
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).toContain(ca1.trim());
    expect((await sh('--drop-old-ca')).code).toBe(0);
    expect(certs('ca.crt')).toBe(1);
    const leaf = new X509Certificate(readFileSync(join(out, 'tls.crt')));
    expect(leaf.verify(new X509Certificate(readFileSync(join(out, 'ca.crt'))).publicKey)).toBe(true);
    expect((statSync(join(out, 'tls.key')).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(join(out, 'ca.key')).mode & 0o777).toString(8)).toBe('600');
    expect((await sh('--bogus')).code).toBe(2);
  });
});

/** Secret data and caBundle are base64 that kustomize wraps at 70 columns; the API server ignores the breaks. */
function normalise(o: unknown): unknown {
  const v = structuredClone(o) as K8sObject & { data?: Record<string, string>; webhooks?: { clientConfig?: { caBundle?: string } }[] };
  if (v.kind === 'Secret') for (const k of Object.keys(v.data ?? {})) v.data![k] = String(v.data![k]).replace(/\s+/g, '');
  for (const w of v.webhooks ?? []) if (w.clientConfig?.caBundle) w.clientConfig.caBundle = w.clientConfig.caBundle.replace(/\s+/g, '');
  return v;
}

describe.skipIf(!hasKubectl())('cross-check with kubectl kustomize (where kubectl is installed)', () => {
  test.each(KUSTOMIZATIONS)('%s renders the same objects', (k) => {
    const out = execFileSync('kubectl', ['kustomize', join(tmp, 'k8s', k)], { encoding: 'utf8', timeout: 20_000 });
    const theirs = parseAllDocuments(out).map((d) => normalise(d.toJS()));
    const key = (o: unknown) => {
      const x = o as K8sObject;
      return `${x.kind}/${x.metadata.namespace ?? ''}/${x.metadata.name}`;
    };
    const sort = (list: unknown[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    expect(sort(all(k).map(normalise))).toEqual(sort(theirs));
  });
});
