// Renewal over mTLS with a fetched SVID and the Config/Watch stream (bundle, policies from the watched dir,
// break-glass grants), against the real `tessera control-plane` process with a grpc-js client.
import { X509Certificate } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { ControlPlaneClient } from '../../proxy/src/identity/control-plane-client.js';
import type { IssuedSvid } from '../../proxy/src/identity/control-plane-svid-source.js';
import { TestCa } from '../helpers/test-ca.js';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { collectStream } from '../helpers/stream-collector.js';
import { until } from '../helpers/until.js';
import { systemClock } from '../../common/clock.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const API = `spiffe://${TD}/ns/default/sa/api`;
let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;
let web: ClientSvid & { serial: string };

interface Snapshot {
  version: string;
  bundles: { trust_domain: string; x509_authorities: Buffer[] }[];
  policies: { name: string; json: string }[];
  break_glass: { id: string; to: string; from: string[]; reason: string }[];
}

/** A Config/Watch stream of the client, collected. */
function watch(client: ReturnType<typeof controlPlaneClients>) {
  return collectStream(client.config.Watch!({}) as grpc.ClientReadableStream<Snapshot>);
}

const POLICY = (name: string, selector: string, from: string) =>
  ['apiVersion: tessera.dev/v1', 'kind: AuthorizationPolicy', `metadata: { name: ${name} }`, 'spec:', `  selector: ${selector}`, '  action: ALLOW', '  rules:', `    - from: [${from}]`, ''].join('\n');

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  const tok = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', WEB]);
  const out = join(dir, 'web');
  const f = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', join(cp.dataDir, 'bundle.pem'), '--join-token', tok.stdout.trim(), '--out', out]);
  expect(f.code, f.stderr).toBe(0);
  web = { keyPem: await readFile(join(out, 'key.pem'), 'utf8'), chainPem: await readFile(join(out, 'svid.pem'), 'utf8'), serial: (JSON.parse(f.stdout) as { serial: string }).serial };
});
afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

describe('renewal over mTLS', () => {
  test('the current SVID renews itself: same ID, new serial, new key, no evidence needed', async () => {
    const c = controlPlaneClients(cp.grpc, bundlePem, web);
    try {
      const key = generateKeyPair();
      const r = await signSvid(c.identity, { csr: await createCsr(key, {}) });
      expect(r.err).toBeNull();
      expect(r.res!.spiffe_id).toBe(WEB);
      expect(r.res!.serial).not.toBe(web.serial);
      const leaf = new X509Certificate(r.res!.svid_chain[0]!);
      expect(leaf.subjectAltName).toBe(`URI:${WEB}`);
      expect(leaf.checkIssued(new X509Certificate(r.res!.svid_chain[1]!))).toBe(true);
      expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(key.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
      expect(r.res!.bundles.map((b) => b.trust_domain)).toEqual([TD]);
      const listed = JSON.parse((await tessera(['certs', 'list', '--data-dir', cp.dataDir, '--json'])).stdout) as { serial: string; kind: string }[];
      expect(listed.find((x) => x.serial === r.res!.serial)?.kind).toBe('renew');
    } finally {
      c.close();
    }
  });

  test('renewal cannot change the ID the SVID carries', async () => {
    const c = controlPlaneClients(cp.grpc, bundlePem, web);
    try {
      const r = await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), { uriSans: [API] }) });
      expect(errorCode(r.err)).toBe('TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN');
    } finally {
      c.close();
    }
  });

  test('no client certificate and no evidence, or an SVID from a foreign CA, is UNAUTHENTICATED', async () => {
    const anon = controlPlaneClients(cp.grpc, bundlePem);
    const rogue = await (await TestCa.create({ trustDomain: TD })).mintSvid(WEB);
    const forged = controlPlaneClients(cp.grpc, bundlePem, { keyPem: rogue.keyPem, chainPem: rogue.chainPem });
    try {
      const none = await signSvid(anon.identity, { csr: await createCsr(generateKeyPair(), {}) });
      expect(none.err?.code).toBe(16);
      expect(errorCode(none.err)).toBe('TESSERA_ERR_ATTESTATION_NO_EVIDENCE');
      const bad = await signSvid(forged.identity, { csr: await createCsr(generateKeyPair(), {}) });
      expect(bad.err?.code).toBe(16);
      expect(errorCode(bad.err)).toBe('TESSERA_ERR_ATTESTATION_SVID_INVALID');
    } finally {
      anon.close();
      forged.close();
    }
  });
});

describe('Config/Watch', () => {
  test('streams complete snapshots: the bundle at once, then a policy added to the policies dir, then its removal', async () => {
    const c = controlPlaneClients(cp.grpc, bundlePem, web);
    const w = watch(c);
    try {
      const first = await w.next(() => true);
      expect(first.bundles.map((b) => b.trust_domain)).toEqual([TD]);
      const bundleRoot = new X509Certificate(bundlePem);
      expect(first.bundles[0]!.x509_authorities.map((d) => new X509Certificate(d).fingerprint256)).toEqual([bundleRoot.fingerprint256]);
      expect(first.policies).toEqual([]);

      await writeFile(join(cp.policiesDir, 'api-for-others.yaml'), POLICY('api-allow-web', API, WEB));
      await writeFile(join(cp.policiesDir, 'web.yaml'), POLICY('web-allow-api', WEB, API));
      const withPolicy = await w.next((s) => s.policies.length > 0);
      expect(Number(withPolicy.version)).toBeGreaterThan(Number(first.version));
      // Only the policies that select the caller.
      expect(withPolicy.policies.map((p) => p.name)).toEqual(['web-allow-api']);
      expect((JSON.parse(withPolicy.policies[0]!.json) as { spec: { selector: string } }).spec.selector).toBe(WEB);
      expect(withPolicy.bundles.length).toBe(1);

      await rm(join(cp.policiesDir, 'web.yaml'));
      const removed = await w.next((s) => Number(s.version) > Number(withPolicy.version) && s.policies.length === 0);
      expect(removed.bundles.length).toBe(1);
    } finally {
      w.cancel();
      c.close();
    }
  });

  test('a bad policy file is refused and the last good set stays', async () => {
    await writeFile(join(cp.policiesDir, 'web.yaml'), POLICY('web-allow-api', WEB, API));
    const c = controlPlaneClients(cp.grpc, bundlePem, web);
    const w = watch(c);
    try {
      const good = await w.next((s) => s.policies.length === 1);
      await writeFile(join(cp.policiesDir, 'broken.yaml'), 'kind: AuthorizationPolicy\nspec: { nope: 1 }\n');
      // Once the control plane has read and refused the broken file, the last good set must still be what was sent.
      await until('the broken file refused', async () => /tessera_policy_load_errors_total [1-9]/.test(await (await fetch(`http://${cp.admin}/metrics`)).text()), 10_000, 50);
      expect(w.seen.at(-1)!.policies.map((p) => p.name)).toEqual(good.policies.map((p) => p.name));
    } finally {
      await rm(join(cp.policiesDir, 'broken.yaml'), { force: true });
      w.cancel();
      c.close();
    }
  });

  // An outside audit: a replica started while the policy directory held a bad file loaded no policy at all and still
  // said ready, while a replica started before it served the last good set: the mesh's answers depended on which
  // replica a proxy's stream reached. Such a replica is not ready until the directory loads.
  test('a replica that starts while a policy file is bad is not ready until the directory loads', async () => {
    const { dir: other, cleanup: drop } = await makeTempDir();
    const file = await writeControlPlaneConfig(other);
    await writeFile(join(other, 'policies', 'web.yaml'), POLICY('web-allow-api', WEB, API));
    await writeFile(join(other, 'policies', 'broken.yaml'), 'kind: AuthorizationPolicy\nspec: { nope: 1 }\n');
    const second = await startControlPlaneProcess(other, file);
    try {
      const ready = async () => {
        const r = await fetch(`http://${second.admin}/ready`);
        return { status: r.status, body: await r.text() };
      };
      const before = await ready();
      expect(before.status).toBe(503);
      expect(before.body).toContain('no policy set loaded from');
      await rm(join(other, 'policies', 'broken.yaml'));
      await until('ready once the directory loads', async () => (await ready()).status === 200, 15_000, 100);
    } finally {
      await second.stop();
      await drop();
    }
  });

  test('a break-glass grant reaches the destination\'s snapshot', async () => {
    const c = controlPlaneClients(cp.grpc, bundlePem, web);
    const w = watch(c);
    try {
      await w.next(() => true);
      const r = await tessera(['policy', 'break-glass', '--data-dir', cp.dataDir, '--to', WEB, '--from', `spiffe://${TD}/ns/ops/sa/*`, '--for', '15m', '--reason', 'incident 42', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const grant = JSON.parse(r.stdout) as { id: string };
      const s = await w.next((x) => x.break_glass.length > 0);
      expect(s.break_glass[0]!.id).toBe(grant.id);
      expect(s.break_glass[0]!.from).toEqual([`spiffe://${TD}/ns/ops/sa/*`]);
      expect(s.break_glass[0]!.reason).toBe('incident 42');
      const audit = await readFile(join(cp.dataDir, 'audit.log'), 'utf8');
      expect(audit).toContain(`"grant":"${grant.id}"`);
      // A malformed pattern is a usage error before anything is asked, and so is a grant longer than the control
      // plane's 24h (which it still refuses on its own: the break-glass unit tests).
      const bad = await tessera(['policy', 'break-glass', '--data-dir', cp.dataDir, '--to', WEB, '--from', 'not-an-id', '--for', '15m', '--reason', 'x']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('TESSERA_ERR_CLI_USAGE: --from "not-an-id" is not a SPIFFE ID pattern (TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME: ');
      const long = await tessera(['policy', 'break-glass', '--data-dir', cp.dataDir, '--to', WEB, '--from', `spiffe://${TD}/ns/ops/sa/*`, '--for', '25h', '--reason', 'x']);
      // The control plane's bound, checked by the CLI first with the flag's name (audit 55a F12).
      expect(long.code).toBe(2);
      expect(long.stderr).toContain('TESSERA_ERR_CLI_USAGE: --for "25h" is out of range: from 1ms to 1d');
    } finally {
      w.cancel();
      c.close();
    }
  });

  test('without a client SVID the stream is refused with UNAUTHENTICATED', async () => {
    const c = controlPlaneClients(cp.grpc, bundlePem);
    const w = watch(c);
    try {
      await until('the refusal', () => w.ended() !== undefined, 10_000, 25);
      expect(w.ended()?.error?.code).toBe(16);
      // The code the audit log and metrics record, as renewal tells it (before 2026-12-06: SVID_INVALID).
      expect(errorCode(w.ended()!.error!)).toBe('TESSERA_ERR_ATTESTATION_NO_EVIDENCE');
      expect(w.seen).toEqual([]);
    } finally {
      c.close();
    }
  });
});

describe('the proxy\'s own client (proxy/src/identity/control-plane-client.ts)', () => {
  test('attests with a join token, renews over mTLS with what it got, and watches', async () => {
    const td = TrustDomain.parse(TD);
    const bootstrap = new TrustBundleSet([TrustBundle.parse(td, bundlePem)]);
    const client = new ControlPlaneClient({ address: cp.grpc, trustDomain: td, bundles: () => bootstrap, clock: { nowMs: () => Date.now() }, deadlineClock: systemClock });
    try {
      const tok = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', API]);
      const key = generateKeyPair();
      const first = await client.attest(await createCsr(key, { uriSans: [API] }), { kind: 'join_token', token: tok.stdout.trim() });
      const chain = first.chainDer.map((d) => new X509Certificate(d));
      expect(chain[0]!.subjectAltName).toBe(`URI:${API}`);
      const current: IssuedSvid = {
        id: SpiffeId.parse(API),
        chain,
        key,
        bundle: new TrustBundle(td, first.bundles[0]!.authoritiesDer.map((d) => new X509Certificate(d))),
        notBeforeMs: chain[0]!.validFromDate.getTime(),
        notAfterMs: chain[0]!.validToDate.getTime(),
        issuedAtMs: Date.now(),
        serial: chain[0]!.serialNumber.toLowerCase(),
      };
      const renewed = await client.renew(await createCsr(generateKeyPair(), {}), current);
      const leaf = new X509Certificate(renewed.chainDer[0]!);
      expect(leaf.subjectAltName).toBe(`URI:${API}`);
      expect(leaf.serialNumber.toLowerCase()).not.toBe(current.serial);
      const got = await new Promise<{ version: string; policies: { name: string }[] }>((resolve, reject) => {
        const h = client.watch(current, { onMessage: (m) => { h.cancel(); resolve(m); }, onClose: (e) => reject(e ?? new Error('closed')) });
      });
      expect(Number(got.version)).toBeGreaterThan(0);
      expect(got.policies.map((p) => p.name)).toContain('api-allow-web');
    } finally {
      client.close();
    }
  });
});
