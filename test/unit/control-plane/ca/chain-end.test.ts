// A CA chain ends at its earliest NotAfter up to the root (audit 38c F3: an intermediate outliving its root was
// installed, and every surface showed the intermediate's date while the mesh died at the root's). An intermediate
// left by an older build that outlives its root is read with its chain's end everywhere: the signer's cap on SVIDs,
// `ca status`, /certs, the expiry gauge, the dashboard, readiness, and the warnings, which also come for the signing
// root near its end (managed or offline), naming a prepared successor when there is one.
import type { X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { type CaStatusView, formatCaStatus } from '../../../../cli/ca-status-view.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { caStatus } from '../../../../control-plane/src/admin/ca-routes.js';
import { certsView, updateCaGauges } from '../../../../control-plane/src/admin/certs-view.js';
import { caPanel } from '../../../../control-plane/src/admin/dashboard/ca-panel.js';
import { createMetrics } from '../../../../control-plane/src/admin/metrics.js';
import { PhasedReadiness, signingChainLive } from '../../../../control-plane/src/admin/readiness.js';
import { type AuthorityRecord, serialOf } from '../../../../control-plane/src/ca/authority.js';
import type { AuthorityPersistence } from '../../../../control-plane/src/ca/authority-persistence.js';
import { CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { chainValidity, ROOT_WARNING_LEAD_MS, rootWarningFromMs } from '../../../../control-plane/src/ca/chain-end.js';
import { svidValidity } from '../../../../control-plane/src/issuance/svid-policy.js';
import type { AuditLog, InventoryStore } from '../../../../control-plane/src/store/store-contract.js';
import { DAY_MS } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';

const TD = TrustDomain.parse('example.org');
const T0 = Date.UTC(2026, 5, 1);

async function root(key: KeyPair, notAfterMs: number, notBeforeMs = T0 - 60_000): Promise<X509Certificate> {
  return issueCertificate({ subject: 'CN=Short Root, O=Example', publicKey: key.publicKey, signer: key, notBefore: new Date(notBeforeMs), notAfter: new Date(notAfterMs), basicConstraints: { ca: true }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: [TD.idString()] });
}

async function intermediate(r: X509Certificate, rootKey: KeyPair, key: KeyPair, notAfterMs: number): Promise<X509Certificate> {
  return issueCertificate({ subject: 'CN=Tessera intermediate, O=Tessera', publicKey: key.publicKey, issuer: r, signer: rootKey, notBefore: new Date(T0 - 60_000), notAfter: new Date(notAfterMs), basicConstraints: { ca: true, pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: [TD.idString()] });
}

/**
 * An offline root's authority as an older build left it: its intermediate (30 days) outlives its root (10 days),
 * loaded from an in-memory store (what ca-state.json would hold).
 */
async function outlivingCa(time: FakeTime, warnings: string[] = []) {
  const rootKey = generateKeyPair();
  const intKey = generateKeyPair();
  const r = await root(rootKey, T0 + 10 * DAY_MS);
  const int = await intermediate(r, rootKey, intKey, T0 + 30 * DAY_MS);
  const serial = serialOf(int);
  const record: AuthorityRecord = {
    id: 'abcd0123',
    state: 'active',
    createdAtMs: T0,
    activatedAtMs: T0,
    rootCertFile: 'abcd0123-root.crt',
    rootNotAfterMs: r.validToDate.getTime(),
    intermediates: [{ serial, certFile: `abcd0123-int-${serial.slice(0, 16)}.crt`, keyFile: `abcd0123-int-${serial.slice(0, 16)}.key`, notAfterMs: int.validToDate.getTime() }],
  };
  const store: AuthorityPersistence = {
    mode: 'owner',
    where: 'memory',
    load: async () => ({ state: { version: 1, trustDomain: TD.name, authorities: [record], removed: [] }, authorities: [{ record, root: { cert: r, key: null }, intermediates: [{ cert: int, key: intKey }] }], pendingKey: null, version: null }),
    commit: async () => null,
  };
  const ca = await CaManager.open({
    store,
    trustDomain: TD,
    lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: 2 * DAY_MS },
    rootMode: 'offline',
    clock: time,
    liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
    onChange: () => {},
    onIntermediateDue: (id) => warnings.push(`intermediate ${id}`),
    onRootDue: (id, _root, managed, prepared) => warnings.push(`root ${id} ${managed ? 'managed' : 'offline'} prepared=${prepared}`),
  });
  return { ca, root: r, int };
}

describe('the chain end', () => {
  test("is the earlier NotAfter of the intermediate and its root, and says whose it is", async () => {
    const rootKey = generateKeyPair();
    const r = await root(rootKey, T0 + 10 * DAY_MS);
    expect(chainValidity(await intermediate(r, rootKey, generateKeyPair(), T0 + 30 * DAY_MS), r)).toMatchObject({ notAfterMs: T0 + 10 * DAY_MS, endsWith: 'root' });
    expect(chainValidity(await intermediate(r, rootKey, generateKeyPair(), T0 + 5 * DAY_MS), r)).toMatchObject({ notAfterMs: T0 + 5 * DAY_MS, endsWith: 'intermediate' });
    // The same date: the intermediate's own (a managed one capped at its root, or one signed to the root's end).
    expect(chainValidity(await intermediate(r, rootKey, generateKeyPair(), T0 + 10 * DAY_MS), r)).toMatchObject({ notAfterMs: T0 + 10 * DAY_MS, endsWith: 'intermediate' });
  });

  test('a root is warned about from half its life, but no earlier than 30 days before it ends', async () => {
    const key = generateKeyPair();
    const year = await root(key, T0 + 365 * DAY_MS, T0);
    expect(rootWarningFromMs(year)).toBe(T0 + 365 * DAY_MS - ROOT_WARNING_LEAD_MS);
    const short = await root(key, T0 + 10 * 60_000, T0);
    expect(rootWarningFromMs(short)).toBe(T0 + 5 * 60_000);
  });
});

describe('an intermediate that outlives its root, installed by an older build', () => {
  test('the signer ends with the root: SVIDs are capped there, and none is issued past it (naming the root)', async () => {
    const time = new FakeTime(T0);
    const { ca, root: r } = await outlivingCa(time);
    const signer = ca.current().signer;
    expect(signer).toMatchObject({ notAfterMs: r.validToDate.getTime(), endsWith: 'root' });
    const base = { ttlMs: 3_600_000, maxTtlMs: 86_400_000, backdateMs: 60_000, requestedTtlMs: 0, issuerNotBeforeMs: signer.notBeforeMs, issuerNotAfterMs: signer.notAfterMs, issuerEndsWith: signer.endsWith };
    expect(svidValidity({ ...base, nowMs: r.validToDate.getTime() - 600_000 }).notAfterMs).toBe(r.validToDate.getTime());
    expect(() => svidValidity({ ...base, nowMs: r.validToDate.getTime() })).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CA_NO_INTERMEDIATE', message: expect.stringContaining("root expired") }));
  });

  test('ca status, /certs, the expiry gauge and the dashboard give the root\'s date for the intermediate', async () => {
    const time = new FakeTime(T0);
    const { ca, root: r } = await outlivingCa(time);
    const rootEnd = r.validToDate.toISOString();
    const deps = { trustDomain: TD, ca, inventory: { liveByAuthority: async () => ({ count: 0, latestNotAfterMs: null }) } as unknown as InventoryStore, audit: {} as AuditLog, clock: time };
    const status = await caStatus(deps);
    expect(status.authorities[0]).toMatchObject({ intermediateNotAfter: rootEnd, rootNotAfter: rootEnd, chainEndsWith: 'root' });
    // As the CLI reads it: the JSON the admin socket answers.
    const text = formatCaStatus(JSON.parse(JSON.stringify(status)) as CaStatusView);
    expect(text).toContain(`its signing chain ends ${rootEnd}, when its root expires`);
    expect(text).toContain('install an intermediate of a new root');
    expect(certsView(TD, undefined, ca.current())).toMatchObject({ intermediateNotAfter: rootEnd, chainEndsWith: 'root' });
    const registry = new Registry();
    const metrics = createMetrics(registry, { version: 't', node: 't', openssl: 't' });
    updateCaGauges(metrics, ca.current(), time.nowMs());
    const gauge = (await registry.getSingleMetric('tessera_ca_expiry_timestamp_seconds')!.get()).values;
    expect(gauge.find((v) => v.labels['cert'] === 'intermediate')?.value).toBe(r.validToDate.getTime() / 1000);
    expect(caPanel(ca.current(), undefined).authorities[0]!.intermediates[0]!.notAfterMs).toBe(r.validToDate.getTime());
  });

  test("readiness fails once the chain ended, naming the root; not before", async () => {
    const time = new FakeTime(T0);
    const { ca, root: r } = await outlivingCa(time);
    const ready = new PhasedReadiness([signingChainLive(() => ca.current().signer, time)]);
    ready.serving();
    time.set(r.validToDate.getTime() - 1);
    expect(ready.notReadyReason()).toBeUndefined();
    time.set(r.validToDate.getTime());
    expect(ready.notReadyReason()).toMatch(/^the CA's signing chain ended at .* \(its root expired\)/);
  });

  test('maintenance warns about the root, not about renewing the intermediate (no intermediate of that root can help)', async () => {
    const time = new FakeTime(T0);
    const warnings: string[] = [];
    const { ca } = await outlivingCa(time, warnings);
    await ca.maintain();
    expect(warnings).toEqual([]);
    // Half the chain's life (to the root's end, day 10) has passed: the root is what ends it.
    time.set(T0 + 5 * DAY_MS);
    await ca.maintain();
    expect(warnings).toEqual(['root abcd0123 offline prepared=null']);
  });
});

describe('the signing root near its end, managed', () => {
  test('warned about 30 days ahead with no successor; then naming the prepared one', async () => {
    const time = new FakeTime(T0);
    const warnings: string[] = [];
    const store: AuthorityPersistence = { mode: 'owner', where: 'memory', load: async () => null, commit: async () => null };
    const ca = await CaManager.open({
      store,
      trustDomain: TD,
      lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: 2 * DAY_MS },
      clock: time,
      liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
      onChange: () => {},
      onRootDue: (id, _root, managed, prepared) => warnings.push(`${id === ca.current().signer.authorityId ? 'active' : id} ${managed ? 'managed' : 'offline'} prepared=${prepared}`),
    });
    time.set(T0 + 300 * DAY_MS);
    await ca.maintain();
    expect(warnings).toEqual([]);
    time.set(T0 + 336 * DAY_MS);
    await ca.maintain();
    expect(warnings).toEqual(['active managed prepared=null']);
    const next = await ca.prepare();
    await ca.maintain();
    expect(warnings.at(-1)).toBe(`active managed prepared=${next.id}`);
    // Activated: the new root is far from its end; the old one is retired and not warned about.
    await ca.activate();
    warnings.length = 0;
    await ca.maintain();
    expect(warnings).toEqual([]);
  });
});
