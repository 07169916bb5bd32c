// deploy/k8s ships ingress policies for tessera-system (audit 4, B3: any pod could reach the webhook and the control
// plane's ports): everything there is denied unless allowed; the webhook port alone on the injector; gRPC from
// opted-in namespaces; admin from the namespace itself and monitoring. Rendered from the kustomization the docs
// apply, and checked against the Deployments' own labels and ports so the two cannot drift apart.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, test } from 'vitest';
import { NAMESPACE_INJECT_LABEL, NAMESPACE_INJECT_VALUE } from '../../../../control-plane/src/injector/annotations.js';
import { REPO_ROOT } from '../../../helpers/run.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';
import { type K8sObject, renderKustomization } from '../../deploy/kustomize-render.js';

interface Peer {
  namespaceSelector?: { matchLabels?: Record<string, string> };
  podSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: unknown;
}
interface Policy {
  metadata: { name: string; namespace: string };
  spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes: string[]; ingress?: { from?: Peer[]; ports?: { port: number }[] }[] };
}
interface Deployment {
  metadata: { name: string };
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: { containers: { ports: { name: string; containerPort: number }[]; env?: { name: string; value: string }[]; resources: { limits: { memory: string } } }[] };
    };
  };
}

const base = renderKustomization(join(REPO_ROOT, 'deploy/k8s/base'));
const policies = base.filter((o) => o.kind === 'NetworkPolicy') as unknown as (K8sObject & Policy)[];
const deployment = (name: string) => base.find((o) => o.kind === 'Deployment' && o.metadata.name === name) as unknown as Deployment;
const selects = (p: Policy, d: Deployment) => Object.entries(p.spec.podSelector.matchLabels ?? {}).every(([k, v]) => d.spec.template.metadata.labels[k] === v);
const rulesFor = (d: Deployment) => policies.filter((p) => selects(p, d)).flatMap((p) => p.spec.ingress ?? []);
const portsOpen = (d: Deployment) => rulesFor(d).flatMap((r) => (r.ports ?? []).map((p) => p.port));
const sourcesOf = (d: Deployment, port: number) => rulesFor(d).filter((r) => (r.ports ?? []).some((p) => p.port === port)).flatMap((r) => r.from ?? [{}]);

describe('tessera-system network policy', () => {
  test('shipped in the base the install applies, valid for the API, in tessera-system, Ingress only', () => {
    const install = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/k8s/install/kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect(install.resources).toContain('../base');
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(['tessera-control-plane', 'tessera-default-deny-ingress', 'tessera-injector']);
    for (const p of policies) {
      expect(validateK8sObject(p).errors, p.metadata.name).toEqual([]);
      expect(p.metadata.namespace).toBe('tessera-system');
      expect(p.spec.policyTypes).toEqual(['Ingress']);
    }
    const deny = policies.find((p) => p.metadata.name === 'tessera-default-deny-ingress')!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
  });

  test('the injector: only its webhook port is open', () => {
    const inj = deployment('tessera-injector');
    const webhookPort = inj.spec.template.spec.containers[0]!.ports.find((p) => p.name === 'webhook')!.containerPort;
    expect(portsOpen(inj)).toEqual([webhookPort]);
  });

  test('the control plane: gRPC from opted-in namespaces and its own, admin from its own and monitoring only', () => {
    const cp = deployment('tessera-control-plane');
    const port = (name: string) => cp.spec.template.spec.containers[0]!.ports.find((p) => p.name === name)!.containerPort;
    expect(portsOpen(cp).sort()).toEqual([port('grpc'), port('admin')].sort());
    expect(sourcesOf(cp, port('grpc'))).toEqual([{ namespaceSelector: { matchLabels: { [NAMESPACE_INJECT_LABEL]: NAMESPACE_INJECT_VALUE } } }, { podSelector: {} }]);
    const admin = sourcesOf(cp, port('admin'));
    expect(admin).toEqual([{ podSelector: {} }, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
  });

  test("the injector's V8 heap is capped below its container's memory limit", () => {
    const c = deployment('tessera-injector').spec.template.spec.containers[0]!;
    const cap = /--max-old-space-size=(\d+)/.exec(c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '');
    expect(cap).not.toBeNull();
    expect(Number(cap![1])).toBeLessThanOrEqual(Number(/^(\d+)Mi$/.exec(c.resources.limits.memory)![1]) / 2);
  });
});
