// The MutatingWebhookConfiguration that routes pod creation to the injector; deploy/k8s holds the same object.
import { ANNOTATION, EXCLUDED_NAMESPACES, NAMESPACE_INJECT_LABEL, NAMESPACE_INJECT_VALUE } from './annotations.js';
import type { JsonObject } from './k8s-types.js';

export const WEBHOOK_NAME = 'inject.tessera.dev';

export interface WebhookConfigurationOptions {
  readonly name?: string;
  readonly service?: { readonly namespace: string; readonly name: string; readonly port: number; readonly path: string };
  /** PEM of the CA that signed the injector's serving certificate; base64-encoded into caBundle. */
  readonly caBundlePem?: string;
  /** Namespaces never injected, whatever their labels (default EXCLUDED_NAMESPACES, which the injector also enforces). */
  readonly excludedNamespaces?: readonly string[];
}

export const WEBHOOK_DEFAULTS = Object.freeze({
  name: 'tessera-sidecar-injector',
  service: Object.freeze({ namespace: 'tessera-system', name: 'tessera-injector', port: 443, path: '/inject' }),
  excludedNamespaces: EXCLUDED_NAMESPACES,
});

/**
 * Choices (docs/kubernetes.md explains them):
 * - failurePolicy Fail: in an opted-in namespace a pod admitted without its sidecar would run without mTLS,
 *   so when the injector is unreachable pod creation fails closed. The injector is its own Deployment (2
 *   replicas + PDB) that never needs the CA, so "the CA cannot issue" never becomes "no pod can be created".
 * - timeoutSeconds 5: injection takes well under 10 ms; 5 s bounds how long a pod create can hang.
 * - sideEffects None (dry-run safe), reinvocationPolicy IfNeeded (re-run after later webhooks; idempotent).
 * - namespaceSelector on tessera.dev/inject=enabled, excluding tessera-system so the control plane can
 *   always start (the injector also skips those namespaces itself); objectSelector and a CEL matchCondition let
 *   opted-out pods skip the webhook entirely, so they never depend on its availability. The objectSelector matches
 *   the label exactly; the matchConditions fold case (and trim the annotation) as the injector does, so "False" or
 *   " DISABLED" stay away from the webhook too.
 */
export function mutatingWebhookConfiguration(opts: WebhookConfigurationOptions = {}): JsonObject {
  const svc = opts.service ?? WEBHOOK_DEFAULTS.service;
  const excluded = [...(opts.excludedNamespaces ?? WEBHOOK_DEFAULTS.excludedNamespaces)];
  // Folded as the injector reads them (trimmed, ASCII case-insensitive: annotations.ts), so every opt-out it honours
  // keeps the pod away from the webhook (audit 5, N4). trim() and lowerAscii() are Kubernetes' CEL string library.
  const optOutAnnotation = `has(object.metadata.annotations) && '${ANNOTATION.inject}' in object.metadata.annotations && object.metadata.annotations['${ANNOTATION.inject}'].trim().lowerAscii() in ['false', 'disabled']`;
  const optOutLabel = `has(object.metadata.labels) && '${NAMESPACE_INJECT_LABEL}' in object.metadata.labels && object.metadata.labels['${NAMESPACE_INJECT_LABEL}'].lowerAscii() in ['false', 'disabled']`;
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: opts.name ?? WEBHOOK_DEFAULTS.name, labels: { 'app.kubernetes.io/name': 'tessera', 'app.kubernetes.io/component': 'injector' } },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        clientConfig: {
          service: { namespace: svc.namespace, name: svc.name, port: svc.port, path: svc.path },
          ...(opts.caBundlePem ? { caBundle: Buffer.from(opts.caBundlePem).toString('base64') } : {}),
        },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector: {
          matchLabels: { [NAMESPACE_INJECT_LABEL]: NAMESPACE_INJECT_VALUE },
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded }],
        },
        objectSelector: { matchExpressions: [{ key: NAMESPACE_INJECT_LABEL, operator: 'NotIn', values: ['false', 'disabled'] }] },
        matchConditions: [
          { name: 'not-opted-out', expression: `!(${optOutAnnotation})` },
          { name: 'not-opted-out-by-label', expression: `!(${optOutLabel})` },
        ],
        matchPolicy: 'Equivalent',
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 5,
        reinvocationPolicy: 'IfNeeded',
      },
    ],
  };
}
