// AdmissionReview envelope handling and the injector config, without a server: every malformed input gives a
// clear refusal, never an exception from admitPod.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { hasControlCharacters } from '../../../../common/text/control-characters.js';
import { admitPod, readAdmissionReview, reviewResponseBody } from '../../../../control-plane/src/injector/admission-review.js';
import { resolveInjectorConfig } from '../../../../control-plane/src/injector/injector-config.js';
import { injectManifests } from '../../../../control-plane/src/injector/manifest-inject.js';
import { admissionReview, appPod, TEST_CONFIG, testContext } from '../../../helpers/injector-fixtures.js';

function badReview(body: unknown): string {
  try {
    readAdmissionReview(body);
  } catch (e) {
    if (isTesseraError(e, 'TESSERA_ERR_INJECT_BAD_REVIEW')) return e.message;
    throw e;
  }
  throw new Error('accepted');
}

describe('readAdmissionReview', () => {
  test('reads the fields the injector uses', () => {
    const r = readAdmissionReview(admissionReview(appPod(), { uid: 'u-1', dryRun: true }));
    expect(r).toMatchObject({ uid: 'u-1', operation: 'CREATE', resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', dryRun: true });
  });
  test.each([
    [null, 'not a JSON object'],
    [[], 'not a JSON object'],
    [{ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'a' } }, 'expected apiVersion admission.k8s.io/v1'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, 'kind AdmissionReview'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'no request'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'a b' } }, 'uid'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 7 } }, 'uid'],
  ])('%j is refused', (body, fragment) => {
    expect(badReview(body)).toContain(fragment);
  });
  // Audit 59d F3: the 400 quoted apiVersion and kind whole (900 KB with NUL and ESC came back).
  test('a refusal quotes what was sent bounded and escaped', () => {
    const message = badReview({ apiVersion: `v\u0000\u001b[2J${'x'.repeat(900_000)}`, kind: 'AdmissionReview' });
    expect(message.length).toBeLessThan(1_200);
    expect(hasControlCharacters(message)).toBe(false);
  });
});

describe('admitPod', () => {
  test('a dry-run create is patched like a real one (sideEffects: None)', async () => {
    const out = admitPod(readAdmissionReview(admissionReview(appPod(), { dryRun: true })), await testContext());
    expect(out.decision).toBe('injected');
    expect(JSON.parse(reviewResponseBody(out.response))).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { allowed: true, patchType: 'JSONPatch' } });
  });
  test('subresources, other resources and operations pass untouched', async () => {
    const ctx = await testContext();
    const base = readAdmissionReview(admissionReview(appPod()));
    for (const r of [{ ...base, subResource: 'ephemeralcontainers' }, { ...base, operation: 'UPDATE' }, { ...base, resource: { group: 'apps', version: 'v1', resource: 'deployments' } }]) {
      expect(admitPod(r, ctx)).toEqual({ response: { uid: base.uid, allowed: true }, decision: 'ignored', reason: 'not-a-pod-create' });
    }
  });
  test('no object, and an unexpected failure, are denials with safe messages', async () => {
    const ctx = await testContext();
    const { object: _dropped, ...noObject } = readAdmissionReview(admissionReview(appPod()));
    expect(admitPod(noObject, ctx).response).toMatchObject({ allowed: false, status: { code: 400 } });
    // A getter that throws stands in for a bug deep inside planning.
    const hostile = appPod();
    Object.defineProperty(hostile.spec as object, 'hostNetwork', { get: () => { throw new Error('secret internals'); }, enumerable: true });
    const out = admitPod({ ...readAdmissionReview(admissionReview(appPod())), object: hostile }, ctx);
    expect(out.response).toMatchObject({ allowed: false, status: { code: 500 } });
    expect(out.response.status?.message).not.toContain('secret internals');
    expect(out.internalError).toBeInstanceOf(Error);
  });
});

describe('resolveInjectorConfig', () => {
  test('defaults', () => {
    const c = resolveInjectorConfig({ proxyImage: 'tessera:1', controlPlaneAddress: 'cp:8443' });
    expect(c).toMatchObject({ imagePullPolicy: 'IfNotPresent', tokenAudience: 'tessera', tokenExpirationSeconds: 3600, podBindAddress: '0.0.0.0' });
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } });
    expect(Object.isFrozen(c)).toBe(true);
  });
  test.each([
    [{ proxyImage: 'Tessera Image' }, 'injector.proxyImage'],
    [{ controlPlaneAddress: 'no-port' }, 'injector.controlPlaneAddress'],
    [{ tokenExpirationSeconds: 60 }, 'injector.tokenExpirationSeconds'],
    [{ imagePullPolicy: 'Sometimes' }, 'injector.imagePullPolicy'],
    [{ resources: { requests: { memory: '64 MB' } } }, 'injector.resources.requests.memory'],
    [{ podBindAddress: '::' }, 'injector.podBindAddress'],
  ])('%j is refused naming %s', (over, key) => {
    try {
      resolveInjectorConfig({ ...TEST_CONFIG, ...(over as object) } as Parameters<typeof resolveInjectorConfig>[0]);
      throw new Error('accepted');
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_INJECT_BAD_CONFIG')).toBe(true);
      expect((e as Error).message.startsWith(`${key}:`)).toBe(true);
    }
  });
});

describe('injectManifests', () => {
  test('CronJob templates are found; empty documents and unknown kinds pass; bad YAML names the document', async () => {
    const ctx = await testContext();
    const cron = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly' }, spec: { schedule: '@daily', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'job', image: 'j' }] } } } } } };
    const { reports, output } = injectManifests(`---\n${JSON.stringify(cron)}\n---\n---\nkind: Widget\nmetadata: {name: w}\n`, ctx);
    expect(reports.map((r) => r.result)).toEqual(['injected', 'passed-through']);
    expect(output).toContain('tessera-proxy');
    const list = { apiVersion: 'v1', kind: 'List', items: [cron, { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }] };
    expect(injectManifests(JSON.stringify(list), ctx).reports.map((r) => `${r.kind}:${r.result}`)).toEqual(['CronJob:injected', 'Service:passed-through']);
    expect(() => injectManifests('kind: Pod\nspec: [\n', ctx)).toThrow(/document 1 is not valid YAML/);
    expect(() => injectManifests('kind: Pod\nmetadata: {name: p}\nspec: {}\n', ctx)).toThrow(/document 1 \(Pod p\): not a pod/);
  });
});
