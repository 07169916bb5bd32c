// A read-only CA mount in the plug-in CA shape (Istio's `cacerts`: root-cert.pem, ca-cert.pem, ca-key.pem,
// cert-chain.pem), as a Kubernetes Secret mounts it: the replica signs with the given intermediate (it mints none,
// the root key is nowhere), never rotates it (a warning from half-life instead), writes nothing; each bad Secret is
// refused at open with the code `tessera ca install-intermediate` would give, naming the directory. Needs root for
// the bind mount (skipped otherwise).
import type { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { generateKeyPair, type KeyPair, privateKeyPem } from '../../../../common/pki/keys.js';
import { encodePem } from '../../../../common/pki/pem.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { offlineAuthorityId, serialOf } from '../../../../control-plane/src/ca/authority.js';
import { filePersistence } from '../../../../control-plane/src/ca/authority-persistence.js';
import { AuthorityStore } from '../../../../control-plane/src/ca/authority-store.js';
import { type CaEvent, CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { openCa } from '../../../../control-plane/src/ca/open-ca.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import { DAY_MS } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';
import { canMount, mountSecret, type SecretMount } from '../../../helpers/secret-mount.js';

const MOUNTABLE = canMount();
const TD = TrustDomain.parse('example.org');
const T0 = Date.UTC(2026, 0, 1);

interface Pair {
  readonly cert: X509Certificate;
  readonly key: KeyPair;
}

async function rootPair(days = 3650): Promise<Pair> {
  const key = generateKeyPair();
  return { key, cert: await issueCertificate({ subject: 'CN=Example Root, O=Example', publicKey: key.publicKey, signer: key, notBefore: new Date(T0 - DAY_MS), notAfter: new Date(T0 + days * DAY_MS), basicConstraints: { ca: true }, keyUsage: ['keyCertSign', 'cRLSign'] }) };
}

async function intermediatePair(root: Pair, uri = TD.idString()): Promise<Pair> {
  const key = generateKeyPair();
  return { key, cert: await issueCertificate({ subject: 'CN=Cluster intermediate, O=Example', publicKey: key.publicKey, issuer: root.cert, signer: root.key, notBefore: new Date(T0 - 60_000), notAfter: new Date(T0 + 10 * DAY_MS), basicConstraints: { ca: true, pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: [uri] }) };
}

const pem = (c: X509Certificate) => encodePem('CERTIFICATE', c.raw);
const cacerts = (root: Pair, int: Pair, key = int.key) => ({ 'root-cert.pem': pem(root.cert), 'ca-cert.pem': pem(int.cert), 'ca-key.pem': privateKeyPem(key), 'cert-chain.pem': pem(int.cert) + pem(root.cert) });

describe.skipIf(!MOUNTABLE)('a plug-in CA Secret (offline root)', () => {
  const undo: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const u of undo.splice(0).reverse()) await u();
  });

  async function mounted(files: Record<string, string>, mode = 0o400): Promise<SecretMount> {
    const tmp = await makeTempDir();
    undo.push(tmp.cleanup);
    const mount = await mountSecret(join(tmp.dir, 'secret'), join(tmp.dir, 'ca'), files, { mode });
    undo.push(() => mount.unmount());
    return mount;
  }

  async function open(dir: string, time: FakeTime) {
    const events: CaEvent[] = [];
    const due: string[] = [];
    const ca = await CaManager.open({
      store: filePersistence(new AuthorityStore({ dir, clock: time, trustDomain: TD })),
      trustDomain: TD,
      lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: DAY_MS },
      clock: time,
      liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
      onChange: (_s, e) => events.push(...e),
      onIntermediateDue: (_id, c) => due.push(serialOf(c)),
    });
    return { ca, events, due };
  }

  const codeOf = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isTesseraError(e) ? `${e.code}: ${e.message}` : String(e)));
  const listing = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('..')).sort().map((n) => [n, readFileSync(join(dir, n)).toString('base64')]);

  test('signs with the Secret intermediate itself: no intermediate minted, no rotation (a warning from half-life), nothing written', async () => {
    const time = new FakeTime(T0);
    const root = await rootPair();
    const int = await intermediatePair(root);
    const mount = await mounted(cacerts(root, int));
    const before = listing(mount.target);
    const { ca, events, due } = await open(mount.target, time);
    const snap = ca.current();
    expect(events).toEqual([]);
    expect(snap.signer.authorityId).toBe(offlineAuthorityId(root.cert));
    expect(serialOf(snap.signer.intermediate)).toBe(serialOf(int.cert));
    expect(snap.authorities[0]!.root.key).toBeNull();
    expect(snap.bundle.authorities.map((c) => c.fingerprint256)).toEqual([root.cert.fingerprint256]);
    time.advance(6 * DAY_MS);
    expect(await ca.maintain()).toEqual([]);
    expect(due).toEqual([serialOf(int.cert)]);
    expect(serialOf(ca.current().signer.intermediate)).toBe(serialOf(int.cert));
    expect(await codeOf(ca.requestIntermediate())).toMatch(/^TESSERA_ERR_CA_READ_ONLY/);
    expect(listing(mount.target)).toEqual(before);
  });

  // Audit 62h F3: the half-life warning sent the operator to intermediate-csr, which a read-only Secret refuses.
  test('the half-life warning says to renew the intermediate in the Secret, not with intermediate-csr', async () => {
    const time = new FakeTime(T0);
    const root = await rootPair();
    const mount = await mounted(cacerts(root, await intermediatePair(root)));
    const storeDir = await makeTempDir();
    undo.push(storeDir.cleanup);
    const store = await openSqliteStore(storeDir.dir);
    undo.push(() => store.close());
    const warnings: string[] = [];
    const ca = await openCa({ dataDir: join(mount.target, '..'), trustDomain: TD, lifetimes: { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: DAY_MS }, rootMode: 'offline', clock: time, inventory: store.inventory, audit: store.audit, log: { info: () => undefined, warn: (_o, msg) => warnings.push(msg), error: () => undefined }, onChange: () => undefined });
    time.advance(6 * DAY_MS); // past half of the 10-day intermediate
    await ca.maintain();
    expect(warnings.filter((w) => w.includes('past half its lifetime'))).toEqual([expect.stringContaining('put it in the Secret (ca-cert.pem, ca-key.pem)')]);
    expect(warnings.join('\n')).not.toContain('intermediate-csr');
  });

  test('a bad Secret is refused at open with the install check code, naming the directory', async () => {
    const time = new FakeTime(T0);
    const root = await rootPair();
    const int = await intermediatePair(root);
    const cases: [string, Record<string, string>, RegExp, number?][] = [
      ['another trust domain', cacerts(root, await intermediatePair(root, 'spiffe://other.org')), /^TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME: .*\/ca \(root-cert\.pem, ca-cert\.pem, ca-key\.pem\): .*spiffe:\/\/other\.org/],
      ['a key of another intermediate', cacerts(root, int, generateKeyPair()), /^TESSERA_ERR_CA_INTERMEDIATE_KEY_MISMATCH: .*\/ca\/ca-key\.pem does not match .*\/ca\/ca-cert\.pem/],
      ['an intermediate of another root', { ...cacerts(root, int), 'root-cert.pem': pem((await rootPair()).cert) }, /^TESSERA_ERR_CA_INTERMEDIATE_NOT_SIGNED: /],
      ['a world-readable key', cacerts(root, int), /^TESSERA_ERR_CA_KEY_EXPOSED: .*\/ca\/ca-key\.pem: mode 0644/, 0o644],
      // Audit 38c F3: a 10-day intermediate of a 5-day root (the chain would end at the root's date).
      ['an intermediate that outlives its root', await (async () => { const short = await rootPair(5); return cacerts(short, await intermediatePair(short)); })(), /^TESSERA_ERR_CA_INTERMEDIATE_OUTLIVES_ROOT: /],
      // Read bounded; and no ca-state.json names a plug-in Secret's files (audit 62f I1: the message said one did).
      ['a ca-cert.pem over 1 MiB', { ...cacerts(root, int), 'ca-cert.pem': 'x'.repeat(1024 * 1024 + 1) }, /^TESSERA_ERR_CA_STATE_CORRUPT: .*\/ca\/ca-cert\.pem: over 1048576 bytes, the most it may be$/],
    ];
    for (const [what, files, want, mode] of cases) {
      const mount = await mounted(files, mode);
      expect(await codeOf(open(mount.target, time)), what).toMatch(want);
    }
    const mount = await mounted(cacerts(root, int));
    time.advance(11 * DAY_MS);
    expect(await codeOf(open(mount.target, time))).toMatch(/^TESSERA_ERR_CA_INTERMEDIATE_EXPIRED: /);
  });
});
