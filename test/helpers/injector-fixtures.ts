// Pods, namespaces and injector contexts for the injector tests, built in code (no committed fixtures).
import { issueCertificate } from '../../common/pki/cert-builder.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { TestCa } from './test-ca.js';
import { type InjectorConfig, resolveInjectorConfig } from '../../control-plane/src/injector/injector-config.js';
import type { InjectionContext } from '../../control-plane/src/injector/plan-injection.js';

export const TEST_CONFIG: InjectorConfig = resolveInjectorConfig({
  proxyImage: 'registry.example/tessera:0.1.0',
  controlPlaneAddress: 'tessera-control-plane.tessera-system.svc:8443',
  version: '0.1.0',
});

let cached: Promise<string> | undefined;
/** One test CA per test file is plenty: the bundle only needs to be real PEM certificates. */
export function testBundlePem(): Promise<string> {
  cached ??= TestCa.create({ trustDomain: 'cluster.local' }).then((ca) => ca.bundlePem());
  return cached;
}

export async function testContext(config: InjectorConfig = TEST_CONFIG): Promise<InjectionContext> {
  return { config, bundlePem: await testBundlePem() };
}

export interface PodOptions {
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  name?: string;
  namespace?: string;
}

/** A realistic app pod: one container with a port, env and a mount of its own, one plain init container. */
export function appPod(opts: PodOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: opts.name ?? 'web-7d9f8',
      namespace: opts.namespace ?? 'shop',
      labels: { app: 'web', ...(opts.labels ?? {}) },
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    spec: {
      serviceAccountName: 'web',
      initContainers: [{ name: 'migrate', image: 'registry.example/web:1', command: ['/migrate'] }],
      containers: [
        {
          name: 'web',
          image: 'registry.example/web:1',
          ports: [{ containerPort: 8080, name: 'http' }],
          env: [{ name: 'MODE', value: 'prod' }],
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

/** The barest pod the API server accepts: no metadata annotations, no lists to append to. */
export function barePod(): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'bare-' }, spec: { containers: [{ name: 'app', image: 'busybox' }] } };
}

export interface ServingPki {
  readonly caPem: string;
  /** Leaf then CA. */
  readonly certPem: string;
  readonly keyPem: string;
}

export const INJECTOR_HOST = 'tessera-injector.tessera-system.svc';

/** A private CA and a TLS serving certificate for the given DNS names, as a webhook or API server uses. */
export async function servingPki(dnsNames: readonly string[] = [INJECTOR_HOST, 'localhost'], caName = 'Tessera Test Webhook CA'): Promise<ServingPki> {
  const now = Date.now();
  const caKey = generateKeyPair();
  const ca = await issueCertificate({
    subject: `CN=${caName}`,
    publicKey: caKey.publicKey,
    signer: caKey,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    basicConstraints: { ca: true, pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
  });
  const key = generateKeyPair();
  const leaf = await issueCertificate({
    subject: `CN=${dnsNames[0]}`,
    publicKey: key.publicKey,
    issuer: ca,
    signer: caKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    basicConstraints: { ca: false },
    keyUsage: ['digitalSignature'],
    dnsSans: dnsNames,
    extKeyUsage: ['serverAuth'],
  });
  const caPem = encodePem('CERTIFICATE', ca.raw);
  return { caPem, certPem: encodePem('CERTIFICATE', leaf.raw) + caPem, keyPem: privateKeyPem(key) };
}

/** An AdmissionReview as kube-apiserver sends it for a pod CREATE (fields as in admission.k8s.io/v1). */
export function admissionReview(pod: Record<string, unknown>, opts: { uid?: string; namespace?: string; operation?: string; dryRun?: boolean } = {}): Record<string, unknown> {
  const namespace = opts.namespace ?? 'shop';
  const meta = (pod.metadata ?? {}) as { name?: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: opts.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(meta.name ? { name: meta.name } : {}),
      namespace,
      operation: opts.operation ?? 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: '0c6f0c3d-2b1e-4a52-9b1b-7d2a1f0e8c11',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: { ...pod, metadata: { ...(pod.metadata as object), namespace } },
      oldObject: null,
      dryRun: opts.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
