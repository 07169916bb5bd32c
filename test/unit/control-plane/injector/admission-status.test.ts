// A denied admission carries the HTTP status the error catalogue gives the injection error, with Kubernetes'
// StatusReason for it; errors that are not injection errors stay a generic 500.
import { describe, expect, test } from 'vitest';
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
  test('a pod without containers: 400 BadRequest', async () => {
    const pod = { ...appPod(), spec: { containers: [] } };
    const out = admitPod(readAdmissionReview(admissionReview(pod)), await testContext());
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_NOT_A_POD', response: { allowed: false, status: { code: 400, reason: 'BadRequest' } } });
  });
});
