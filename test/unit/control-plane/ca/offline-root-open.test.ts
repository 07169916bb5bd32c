// openCa with `ca.root: offline` in-process, over the real admin socket: on an empty data dir it waits, serving the
// CA routes only, until an intermediate is installed through them (requests and installs audited, refusals audited
// and counted); a stop ends the wait; an offline root's intermediate past half-life is a warning at most hourly.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { decodePem, encodePem } from '../../../../common/pki/pem.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { adminRequest, adminSocketPath } from '../../../../control-plane/src/admin/admin-client.js';
import type { CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { openCa } from '../../../../control-plane/src/ca/open-ca.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { DAY_MS, HOUR_MS } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';
import { until } from '../../../helpers/until.js';

const TD = TrustDomain.parse('example.org');

describe('openCa with an offline root', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: ControlPlaneStore;
  const time = new FakeTime(Date.now());
  beforeEach(async () => {
    warnings = [];
    ({ dir, cleanup } = await makeTempDir());
    store = await openSqliteStore(dir);
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  let warnings: Record<string, unknown>[] = [];
  const installs = new Counter({ name: 'installs', help: 'h', labelNames: ['result', 'reason'], registers: [new Registry()] });
  function open(stop?: Promise<unknown>): Promise<CaManager> {
    return openCa({ dataDir: dir, trustDomain: TD, lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: DAY_MS }, rootMode: 'offline', clock: time, inventory: store.inventory, audit: store.audit, log: { info: () => undefined, warn: (o) => warnings.push(o), error: () => undefined }, onChange: () => undefined, installs, stop });
  }
  const audit = () => readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const count = async (reason: string) => (await installs.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;

  test('waits on admin.sock, then starts with the intermediate installed through it; refusals are audited and counted; the warning comes hourly from half-life', async () => {
    const opening = open();
    await until('the waiting admin socket', () => existsSync(adminSocketPath(dir)), 10_000, 20);
    expect(await adminRequest<{ waiting: boolean }>(dir, 'GET', '/v1/ca')).toMatchObject({ waiting: true, authorities: [] });
    expect(await adminRequest(dir, 'POST', '/v1/tokens', { spiffeId: 'spiffe://example.org/x' }).catch((e: unknown) => (isTesseraError(e) ? e.code : e))).toBe('TESSERA_ERR_CA_NO_INTERMEDIATE');
    const { csrPem } = await adminRequest<{ csrPem: string }>(dir, 'POST', '/v1/ca/intermediate-csr', {});

    const rootKey = generateKeyPair();
    const now = time.nowMs();
    const root = await issueCertificate({ subject: 'CN=Example Root', publicKey: rootKey.publicKey, signer: rootKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 3650 * DAY_MS), basicConstraints: { ca: true }, keyUsage: ['keyCertSign', 'cRLSign'] });
    const csr = await parseCsr(decodePem(csrPem)[0]!.der);
    const sign = (uri: string) => issueCertificate({ subject: 'CN=Tessera intermediate', publicKey: csr.publicKey, issuer: root, signer: rootKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 10 * DAY_MS), basicConstraints: { ca: true, pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: [uri] });
    const rootPem = encodePem('CERTIFICATE', root.raw);
    const wrong = await adminRequest(dir, 'POST', '/v1/ca/install-intermediate', { certPem: encodePem('CERTIFICATE', (await sign('spiffe://other.org')).raw), rootPem }).catch((e: unknown) => (isTesseraError(e) ? e.code : e));
    expect(wrong).toBe('TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME');
    expect(await count('wrong_name')).toBe(1);
    const good = await adminRequest<{ state: string }>(dir, 'POST', '/v1/ca/install-intermediate', { certPem: encodePem('CERTIFICATE', (await sign(TD.idString())).raw), rootPem });
    expect(good.state).toBe('active');
    const ca = await opening;
    expect(existsSync(adminSocketPath(dir))).toBe(false);
    expect(await count('none')).toBe(1);
    expect(audit().map((e) => [e['event'], e['code'] ?? null])).toEqual([
      ['ca.intermediate_requested', null],
      ['ca.intermediate_refused', 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME'],
      ['ca.created', null],
      ['ca.intermediate_installed', null],
    ]);

    // The wait was logged; then, from half-life of the 10-day intermediate: warned once, again only an hour later.
    expect(warnings).toEqual([expect.objectContaining({ socket: adminSocketPath(dir) })]);
    const due = () => warnings.filter((w) => 'serial' in w);
    await ca.maintain();
    expect(due()).toHaveLength(0);
    time.advance(5 * DAY_MS + HOUR_MS);
    await ca.maintain();
    await ca.maintain();
    expect(due()).toEqual([expect.objectContaining({ authority: ca.current().signer.authorityId, secondsLeft: expect.any(Number) })]);
    time.advance(HOUR_MS);
    await ca.maintain();
    expect(due()).toHaveLength(2);
  }, 30_000);

  test('a stop while waiting ends it with TESSERA_ERR_CP_STOPPED and closes the socket', async () => {
    let stop!: () => void;
    const opening = open(new Promise<void>((r) => (stop = r)));
    await until('the waiting admin socket', () => existsSync(adminSocketPath(dir)), 10_000, 20);
    stop();
    await expect(opening).rejects.toMatchObject({ code: 'TESSERA_ERR_CP_STOPPED' });
    expect(existsSync(adminSocketPath(dir))).toBe(false);
  }, 30_000);
});
