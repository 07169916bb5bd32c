// An offline root on the replicas' shared PostgreSQL database (real server): the CA state, the pending request's key
// and the installed intermediate travel through the database like managed CA material, so the request can be made
// on one replica, installed on another, and every waiting replica becomes ready by refreshing.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { decodePem, encodePem } from '../../../../common/pki/pem.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { serialOf } from '../../../../control-plane/src/ca/authority.js';
import { CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { sharedPersistence } from '../../../../control-plane/src/ca/shared-authority-store.js';
import { DAY_MS } from '../../../helpers/control-plane-parts.js';
import { type PostgresDatabase, openPostgresDatabase } from '../../../helpers/postgres-database.js';
import { type TestPgStore, openTestPgStore } from '../../../helpers/postgres-store.js';

const TD = TrustDomain.parse('example.org');

describe('an offline root on the shared database', () => {
  let db: PostgresDatabase;
  const stores: TestPgStore[] = [];
  beforeAll(async () => {
    db = await openPostgresDatabase();
  }, 120_000);
  afterAll(async () => {
    for (const s of stores) await s.dispose();
    await db?.destroy();
  });

  async function replica(): Promise<CaManager> {
    const s = await openTestPgStore(db.url);
    stores.push(s);
    return CaManager.open({
      store: sharedPersistence({ records: s.store.authority, where: 'test database', leaderTerm: () => null }),
      leads: () => false,
      trustDomain: TD,
      lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: DAY_MS },
      rootMode: 'offline',
      clock: systemClock,
      liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
    });
  }

  test('requested on one replica, installed on another, ready on both; no root key in the database', async () => {
    const [a, b] = [await replica(), await replica()];
    expect([a.ready, b.ready]).toEqual([false, false]);
    const req = await a.requestIntermediate();
    expect(await b.refresh()).toBe(true);
    expect(b.pendingRequest()?.createdAtMs).toBe(req.requestedAtMs);

    const rootKey = generateKeyPair();
    const now = Date.now();
    const root = await issueCertificate({ subject: 'CN=Example Root', publicKey: rootKey.publicKey, signer: rootKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 3650 * DAY_MS), basicConstraints: { ca: true }, keyUsage: ['keyCertSign', 'cRLSign'] });
    const csr = await parseCsr(decodePem(req.csrPem)[0]!.der);
    const int = await issueCertificate({ subject: 'CN=Tessera intermediate', publicKey: csr.publicKey, issuer: root, signer: rootKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 10 * DAY_MS), basicConstraints: { ca: true, pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: csr.uriSans });
    const done = await b.installIntermediate({ certPem: encodePem('CERTIFICATE', int.raw), rootPem: encodePem('CERTIFICATE', root.raw) });
    expect(done.state).toBe('active');
    expect(b.ready).toBe(true);

    expect(await a.refresh()).toBe(true);
    expect(a.ready).toBe(true);
    expect(a.pendingRequest()).toBeNull();
    for (const r of [a, b]) {
      expect(serialOf(r.current().signer.intermediate)).toBe(serialOf(int));
      expect(r.current().authorities[0]!.root.key).toBeNull();
    }
    // A third replica opening now loads it directly.
    const c = await replica();
    expect(c.ready).toBe(true);
    const material = (await stores[0]!.store.authority.load())!.material;
    const keyNames = [...material.keys()].filter((n) => material.get(n)!.includes('PRIVATE KEY'));
    expect(keyNames).toEqual([`${done.authority}-int-${done.serial.slice(0, 16)}.key`]);
  }, 60_000);
});
