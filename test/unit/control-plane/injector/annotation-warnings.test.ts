// tessera.dev/ annotations that do nothing (audit 61c I1): a typo, or an inbound-port that is no port, was admitted
// without a word. The webhook answers them as AdmissionReview warnings (kubectl prints them) and `tessera inject`
// reports them; the pod is still admitted.
import { describe, expect, test } from 'vitest';
import { admitPod, readAdmissionReview } from '../../../../control-plane/src/injector/admission-review.js';
import { annotationWarnings } from '../../../../control-plane/src/injector/annotation-warnings.js';
import { injectManifests } from '../../../../control-plane/src/injector/manifest-inject.js';
import { admissionReview, appPod, testContext } from '../../../helpers/injector-fixtures.js';

describe('annotationWarnings', () => {
  test('a near miss names the annotation meant; known ones and other prefixes say nothing', () => {
    const w = annotationWarnings(appPod({ annotations: { 'tessera.dev/outbounds': 'x', 'tessera.dev/inbound-prots': '8080', 'tessera.dev/outbound': 'a=spiffe://cluster.local/ns/a/sa/a@a:1', 'example.com/outbounds': 'x', 'tessera.dev/inject': 'true', 'tessera.dev/inbound-port': '15006' } }));
    expect(w).toEqual([
      'tessera: annotation tessera.dev/outbounds is not one Tessera reads and has no effect (did you mean tessera.dev/outbound?)',
      'tessera: annotation tessera.dev/inbound-prots is not one Tessera reads and has no effect (did you mean tessera.dev/inbound-ports?)',
    ]);
  });
  test('tessera.dev/inbound-port (read by the control plane) that is not a port is said', () => {
    for (const bad of ['99999', '0', 'http', '']) expect(annotationWarnings(appPod({ annotations: { 'tessera.dev/inbound-port': bad } }))).toEqual(['tessera: annotation tessera.dev/inbound-port is not a port (1-65535): the control plane leaves this pod out of Kubernetes discovery']);
  });
  test('far from every known name: no guess; a long or hostile name is cut and escaped; many are summed up', () => {
    expect(annotationWarnings(appPod({ annotations: { 'tessera.dev/colour': 'blue' } }))).toEqual(['tessera: annotation tessera.dev/colour is not one Tessera reads and has no effect']);
    const [long] = annotationWarnings(appPod({ annotations: { [`tessera.dev/${'x'.repeat(500)}\u001b[2J`]: '1' } }));
    expect(long!.length).toBeLessThan(200);
    expect(long).not.toContain('\u001b');
    // Every character a control one: cut after escaping, so still short.
    const [escaped] = annotationWarnings(appPod({ annotations: { [`tessera.dev/${'\u0001'.repeat(200)}`]: '1' } }));
    expect(escaped!.length).toBeLessThan(200);
    const many = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`tessera.dev/unknown-${i}`, '1']));
    const w = annotationWarnings(appPod({ annotations: many }));
    expect(w).toHaveLength(6);
    expect(w.at(-1)).toBe('tessera: 4 more unknown tessera.dev/ annotations have no effect');
  });
  test('no metadata, or annotations that are not an object: nothing', () => {
    for (const pod of [null, 7, {}, { metadata: [] }, { metadata: { annotations: 'x' } }]) expect(annotationWarnings(pod)).toEqual([]);
  });
});

describe('where they are said', () => {
  test('the webhook injects the pod and returns the warnings; a skipped pod gets them beside its own', async () => {
    const ctx = await testContext();
    const out = admitPod(readAdmissionReview(admissionReview(appPod({ annotations: { 'tessera.dev/outbounds': 'x' } }))), ctx);
    expect(out.decision).toBe('injected');
    expect(out.response.warnings).toEqual(['tessera: annotation tessera.dev/outbounds is not one Tessera reads and has no effect (did you mean tessera.dev/outbound?)']);
    const skipped = appPod({ annotations: { 'tessera.dev/colour': 'x' } });
    (skipped.spec as Record<string, unknown>).hostNetwork = true;
    const s = admitPod(readAdmissionReview(admissionReview(skipped)), ctx);
    expect(s.decision).toBe('skipped');
    expect(s.response.warnings).toHaveLength(2);
    expect(s.response.warnings?.[1]).toContain('tessera.dev/colour');
    // Without unknown annotations, no warnings field.
    expect(admitPod(readAdmissionReview(admissionReview(appPod())), ctx).response.warnings).toBeUndefined();
  });
  test('tessera inject reports them for a Deployment\'s pod template', async () => {
    const ctx = await testContext();
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template: { metadata: { annotations: { 'tessera.dev/acces-log': 'off' } }, spec: appPod().spec } } };
    const { reports } = injectManifests(JSON.stringify(deployment), ctx);
    expect(reports[0]).toMatchObject({ result: 'injected', warning: expect.stringContaining('did you mean tessera.dev/access-log?') });
  });
});
