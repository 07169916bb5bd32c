// The injector's own opt-in/opt-out rules (audit 4, D1), not only the webhook's selectors: the pod label
// tessera.dev/inject is read like the annotation (case-insensitive, unknown words refused), an opt-out by either
// wins, and the excluded namespaces (the same list the webhook's namespaceSelector names) are never injected.
import { describe, expect, test } from 'vitest';
import { admitPod, readAdmissionReview } from '../../../../control-plane/src/injector/admission-review.js';
import { EXCLUDED_NAMESPACES } from '../../../../control-plane/src/injector/annotations.js';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { mutatingWebhookConfiguration } from '../../../../control-plane/src/injector/webhook-configuration.js';
import { admissionReview, appPod, testContext } from '../../../helpers/injector-fixtures.js';

async function decide(opts: { labels?: Record<string, string>; annotations?: Record<string, string> }): Promise<string> {
  try {
    const plan = planInjection({ pod: appPod(opts) }, await testContext());
    return plan.action === 'skip' ? `skip:${plan.reason}` : 'inject';
  } catch (e) {
    return `deny:${(e as Error).message}`;
  }
}

describe('the pod label tessera.dev/inject', () => {
  test.each(['false', 'False', 'FALSE', 'disabled', 'Disabled'])('label %s opts the pod out, as the annotation does', async (v) => {
    expect(await decide({ labels: { 'tessera.dev/inject': v } })).toBe('skip:opted-out');
    expect(await decide({ annotations: { 'tessera.dev/inject': v } })).toBe('skip:opted-out');
  });
  test.each(['true', 'enabled', 'True'])('label %s injects', async (v) => {
    expect(await decide({ labels: { 'tessera.dev/inject': v } })).toBe('inject');
  });
  test('an unknown word is refused naming the label, as an unknown annotation value is', async () => {
    expect(await decide({ labels: { 'tessera.dev/inject': 'off' } })).toMatch(/^deny:label tessera.dev\/inject: "off" is not one of/);
    expect(await decide({ annotations: { 'tessera.dev/inject': 'off' } })).toMatch(/^deny:annotation tessera.dev\/inject: "off" is not one of/);
  });
  test('an opt-out by either wins, whatever the other says', async () => {
    expect(await decide({ labels: { 'tessera.dev/inject': 'false' }, annotations: { 'tessera.dev/inject': 'true' } })).toBe('skip:opted-out');
    expect(await decide({ labels: { 'tessera.dev/inject': 'false' }, annotations: { 'tessera.dev/inject': 'bogus' } })).toBe('skip:opted-out');
    expect(await decide({ labels: { 'tessera.dev/inject': 'enabled' }, annotations: { 'tessera.dev/inject': 'disabled' } })).toBe('skip:opted-out');
  });
});

describe('excluded namespaces', () => {
  test('the injector skips exactly the namespaces the webhook configuration excludes (one list)', async () => {
    const webhook = mutatingWebhookConfiguration() as { webhooks: { namespaceSelector: { matchExpressions: { values: string[] }[] } }[] };
    expect(webhook.webhooks[0]!.namespaceSelector.matchExpressions[0]!.values).toEqual([...EXCLUDED_NAMESPACES]);
    expect(EXCLUDED_NAMESPACES).toEqual(['tessera-system', 'kube-system', 'kube-public', 'kube-node-lease']);
  });

  test.each(['kube-system', 'tessera-system', 'kube-public', 'kube-node-lease'])('a review for %s is allowed untouched, even for a pod it would refuse', async (namespace) => {
    const ctx = await testContext();
    for (const object of [appPod(), { spec: { containers: 'garbage' } }]) {
      const out = admitPod({ ...readAdmissionReview(admissionReview(appPod(), { namespace })), object }, ctx);
      expect(out).toMatchObject({ decision: 'skipped', reason: 'namespace-excluded', response: { allowed: true } });
      expect(out.response.patch).toBeUndefined();
    }
  });

  test('other namespaces, including look-alikes, are injected; a review without a namespace is refused', async () => {
    const ctx = await testContext();
    for (const namespace of ['kube-systems', 'tessera', 'default']) {
      expect(admitPod(readAdmissionReview(admissionReview(appPod(), { namespace })), ctx).decision).toBe('injected');
    }
    const { namespace: _n, ...noNamespace } = readAdmissionReview(admissionReview(appPod()));
    expect(admitPod(noNamespace, ctx)).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_BAD_REVIEW', response: { allowed: false, status: { code: 400 } } });
  });
});

describe('the webhook configuration folds opt-outs as the injector does (audit 5, N4)', () => {
  test('its matchConditions trim and lower-case the annotation, and lower-case the label', () => {
    const webhook = mutatingWebhookConfiguration() as { webhooks: { matchConditions: { name: string; expression: string }[] }[] };
    const conditions = webhook.webhooks[0]!.matchConditions;
    expect(conditions.map((c) => c.name)).toEqual(['not-opted-out', 'not-opted-out-by-label']);
    expect(conditions[0]!.expression).toContain("object.metadata.annotations['tessera.dev/inject'].trim().lowerAscii() in ['false', 'disabled']");
    expect(conditions[1]!.expression).toContain("object.metadata.labels['tessera.dev/inject'].lowerAscii() in ['false', 'disabled']");
  });
});

