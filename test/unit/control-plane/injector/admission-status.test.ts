// A denied admission carries the HTTP status the error catalogue gives the injection error, with Kubernetes'
// StatusReason for it; errors that are not injection errors stay a generic 500. Every denial of the review's own
// content has an error code as its reason (the injector logs it).
import { describe, expect, test } from 'vitest';
import { ERROR_CATALOGUE } from '../../../../common/errors.js';
import { admitPod, readAdmissionReview } from '../../../../control-plane/src/injector/admission-review.js';
import { admissionReview, appPod, testContext } from '../../../helpers/injector-fixtures.js';

function withPort(port: number): Record<string, unknown> {
  const pod = appPod();
  const spec = pod.spec as { containers: { ports: { containerPort: number }[] }[] };
  spec.containers[0]!.ports = [{ containerPort: port }];
  return pod;
}

describe('admission denial statuses', () => {
  test('a pod that takes a port the sidecar owns: 409 Conflict', async () => {
    const out = admitPod(readAdmissionReview(admissionReview(withPort(15006))), await testContext());
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_CONFLICT', response: { allowed: false, status: { code: 409, reason: 'Conflict' } } });
  });
  test('a malformed tessera.dev annotation: 400 BadRequest', async () => {
    const out = admitPod(readAdmissionReview(admissionReview(appPod({ annotations: { 'tessera.dev/inbound-ports': 'eighty' } }))), await testContext());
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_BAD_ANNOTATION', response: { allowed: false, status: { code: 400, reason: 'BadRequest' } } });
  });
  // Audit 38b, F4: these two were denied with the reasons "no-object" and "no-namespace", which no code names.
  test('a pod CREATE without an object or a namespace: 400 BadRequest, coded TESSERA_ERR_INJECT_BAD_REVIEW', async () => {
    const ctx = await testContext();
    const { object: _o, ...noObject } = readAdmissionReview(admissionReview(appPod()));
    const { namespace: _n, ...noNamespace } = readAdmissionReview(admissionReview(appPod()));
    for (const request of [noObject, noNamespace]) {
      const out = admitPod(request, ctx);
      expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_BAD_REVIEW', response: { allowed: false, status: { code: 400, reason: 'BadRequest' } } });
      expect(Object.hasOwn(ERROR_CATALOGUE, out.reason)).toBe(true);
    }
  });
  test('a pod without containers: 400 BadRequest', async () => {
    const pod = { ...appPod(), spec: { containers: [] } };
    const out = admitPod(readAdmissionReview(admissionReview(pod)), await testContext());
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_NOT_A_POD', response: { allowed: false, status: { code: 400, reason: 'BadRequest' } } });
  });
});
