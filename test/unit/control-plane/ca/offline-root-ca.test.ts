// The CA with an offline root, on a real data dir and an injected clock; the root holder is played in-process (the
// integration test uses the openssl CLI). With `rootMode: offline` nothing signs until an intermediate is installed,
// no root key is ever written, the pending request's key survives a restart, an offline root's intermediate is
// never rotated here (a warning instead, from half-life), a renewal joins the same authority, a new root becomes a
// prepared authority, and a managed CA can take an offline root as its successor.
import { createPrivateKey, createPublicKey, type X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import { decodePem, encodePem } from '../../../../common/pki/pem.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { serialOf } from '../../../../control-plane/src/ca/authority.js';
import { filePersistence } from '../../../../control-plane/src/ca/authority-persistence.js';
import { AuthorityStore, STATE_FILE } from '../../../../control-plane/src/ca/authority-store.js';
import { type CaEvent, CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { intermediateCsrPem } from '../../../../control-plane/src/ca/offline-intermediate.js';
import { svidValidity } from '../../../../control-plane/src/issuance/svid-policy.js';
import { DAY_MS } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const TD = TrustDomain.parse('example.org');
const LIFETIMES = { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: 2 * DAY_MS };
const codeOf = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isTesseraError(e) ? e.code : String(e)));

/** A root held elsewhere: it signs what a CSR asks for, as the documented openssl recipe does. */
class RootHolder {
  private constructor(
    readonly cert: X509Certificate,
    private readonly key: KeyPair,
  ) {}

  static of(cert: X509Certificate, key: KeyPair): RootHolder {
    return new RootHolder(cert, key);
  }

  static async create(time: FakeTime, name = 'Example Root'): Promise<RootHolder> {
    const key = generateKeyPair();
    const cert = await issueCertificate({ subject: `CN=${name}, O=Example`, publicKey: key.publicKey, signer: key, notBefore: new Date(time.nowMs() - 60_000), notAfter: new Date(time.nowMs() + 3650 * DAY_MS), basicConstraints: { ca: true, pathLength: 1 }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: [TD.idString()] });
    return new RootHolder(cert, key);
  }

  get pem(): string {
    return encodePem('CERTIFICATE', this.cert.raw);
  }

  async sign(csrPem: string, time: FakeTime, ttlMs = 10 * DAY_MS): Promise<string> {
    const csr = await parseCsr(decodePem(csrPem)[0]!.der);
    const cert = await issueCertificate({ subject: `CN=Tessera intermediate ${time.nowMs()}, O=Tessera`, publicKey: csr.publicKey, issuer: this.cert, signer: this.key, notBefore: new Date(time.nowMs() - 60_000), notAfter: new Date(time.nowMs() + ttlMs), basicConstraints: { ca: true, pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'], uriSans: csr.uriSans });
    return encodePem('CERTIFICATE', cert.raw);
  }
}

async function open(dir: string, time: FakeTime, rootMode: 'managed' | 'offline' = 'offline') {
  const events: CaEvent[] = [];
  const due: string[] = [];
  const ca = await CaManager.open({
    store: filePersistence(new AuthorityStore({ dir: join(dir, 'ca'), clock: time })),
    trustDomain: TD,
    lifetimes: LIFETIMES,
    rootMode,
    clock: time,
    liveSvids: async () => ({ count: 0, latestNotAfterMs: null }),
    onChange: (_s, e) => events.push(...e),
    onIntermediateDue: (_id, cert) => due.push(serialOf(cert)),
  });
  return { ca, events, due };
}

const spki = (k: { export(o: { type: 'spki'; format: 'der' }): Buffer }) => k.export({ type: 'spki', format: 'der' }).toString('hex');
const csrKey = async (csrPem: string) => spki((await parseCsr(decodePem(csrPem)[0]!.der)).publicKey);

/** Every private key under the CA dir, as SPKI hex of its public half. */
function keysIn(caDir: string): string[] {
  return readdirSync(caDir).flatMap((n) => decodePem(readFileSync(join(caDir, n), 'utf8')).filter((b) => b.label.includes('PRIVATE KEY')).map((b) => spki(createPublicKey(createPrivateKey({ key: b.der, format: 'der', type: 'pkcs8' })))));
}

describe('CaManager with an offline root', () => {
  const tmp = tempDirPerTest();

  test('waits without an authority: nothing signs, no root is made; the request key is 0600 and survives a restart', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const a = await open(tmp.dir, time);
    expect(a.ca.ready).toBe(false);
    expect(() => a.ca.current()).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CA_NO_INTERMEDIATE' }));
    expect(await codeOf(a.ca.prepare())).toBe('TESSERA_ERR_CA_ROOT_OFFLINE');
    const stray = await RootHolder.create(time);
    const strayCert = await stray.sign(await intermediateCsrPem(generateKeyPair(), TD, time.nowMs()), time);
    expect(await codeOf(a.ca.installIntermediate({ certPem: strayCert, rootPem: stray.pem }))).toBe('TESSERA_ERR_CA_NO_PENDING_REQUEST');
    const first = await a.ca.requestIntermediate();
    expect(first.newKey).toBe(true);
    expect(first.csrPem).not.toContain('PRIVATE KEY');
    expect(a.events.map((e) => e.event)).toEqual(['ca.intermediate_requested']);
    const state = JSON.parse(readFileSync(join(tmp.dir, 'ca', STATE_FILE), 'utf8'));
    expect(state.authorities).toEqual([]);
    expect(statSync(join(tmp.dir, 'ca', state.pendingIntermediate.keyFile)).mode & 0o777).toBe(0o600);
    // Asked again, or after a restart: the same key (the CSR sent out stays good); --new-key replaces it.
    expect(await csrKey((await a.ca.requestIntermediate()).csrPem)).toBe(await csrKey(first.csrPem));
    const b = await open(tmp.dir, time);
    expect(b.ca.ready).toBe(false);
    expect(b.ca.pendingRequest()?.createdAtMs).toBe(first.requestedAtMs);
    expect(await csrKey((await b.ca.requestIntermediate()).csrPem)).toBe(await csrKey(first.csrPem));
    const fresh = await b.ca.requestIntermediate(true);
    expect(await csrKey(fresh.csrPem)).not.toBe(await csrKey(first.csrPem));
    expect(readdirSync(join(tmp.dir, 'ca')).filter((n) => n.endsWith('.key'))).toHaveLength(1);
  });

  test('the first installed intermediate makes the active authority; no root key anywhere; never rotated here, a warning from half-life; a renewal joins the authority', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const holder = await RootHolder.create(time);
    const a = await open(tmp.dir, time);
    const req = await a.ca.requestIntermediate();
    const done = await a.ca.installIntermediate({ certPem: await holder.sign(req.csrPem, time), rootPem: holder.pem });
    expect(done).toMatchObject({ newAuthority: true, state: 'active' });
    expect(a.ca.ready).toBe(true);
    expect(a.ca.pendingRequest()).toBeNull();
    const snap = a.ca.current();
    expect(snap.signer.authorityId).toBe(done.authority);
    expect(snap.authorities[0]!.root.key).toBeNull();
    expect(snap.bundle.authorities.map((c) => c.fingerprint256)).toEqual([holder.cert.fingerprint256]);
    expect(a.events.map((e) => e.event)).toEqual(['ca.intermediate_requested', 'ca.created', 'ca.intermediate_installed']);
    expect(keysIn(join(tmp.dir, 'ca'))).not.toContain(spki(holder.cert.publicKey));
    expect(keysIn(join(tmp.dir, 'ca'))).toEqual([await csrKey(req.csrPem)]);

    // Past half-life (10-day intermediate): a managed CA would rotate; this one warns and keeps signing.
    time.advance(4 * DAY_MS);
    await a.ca.maintain();
    expect(a.due).toEqual([]);
    time.advance(2 * DAY_MS);
    expect(await a.ca.maintain()).toEqual([]);
    expect(a.due).toEqual([serialOf(snap.signer.intermediate)]);
    expect(serialOf(a.ca.current().signer.intermediate)).toBe(serialOf(snap.signer.intermediate));

    // A restart loads it as it is; then a renewal signed by the same root becomes the authority's signer.
    const b = await open(tmp.dir, time);
    expect(b.events).toEqual([]);
    expect(b.ca.current().signer.authorityId).toBe(done.authority);
    const renewal = await b.ca.installIntermediate({ certPem: await holder.sign((await b.ca.requestIntermediate()).csrPem, time), rootPem: holder.pem });
    expect(renewal).toMatchObject({ authority: done.authority, newAuthority: false, state: 'active' });
    expect(b.ca.current().authorities).toHaveLength(1);
    expect(b.ca.current().authorities[0]!.intermediates).toHaveLength(2);
    expect(serialOf(b.ca.current().signer.intermediate)).toBe(renewal.serial);
    // The old one is pruned once it expired.
    time.advance(5 * DAY_MS);
    await b.ca.maintain();
    expect(b.ca.current().authorities[0]!.intermediates.map((i) => serialOf(i.cert))).toEqual([renewal.serial]);
  });

  // Audit 62h F2, 62k F2: the newest intermediate signed even past its end, so a renewal installed with a shorter life
  // than the one before it stopped issuance there (TESSERA_ERR_CA_NO_INTERMEDIATE), and a restart then failed, though
  // the longer one was still held.
  test('a renewal shorter than the intermediate before it signs until it ends; then the longer one signs, before and after a restart', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const holder = await RootHolder.create(time);
    const a = await open(tmp.dir, time);
    const long = await a.ca.installIntermediate({ certPem: await holder.sign((await a.ca.requestIntermediate()).csrPem, time, 30 * DAY_MS), rootPem: holder.pem });
    const short = await a.ca.installIntermediate({ certPem: await holder.sign((await a.ca.requestIntermediate(true)).csrPem, time, DAY_MS), rootPem: holder.pem });
    expect(serialOf(a.ca.current().signer.intermediate)).toBe(short.serial);
    time.advance(DAY_MS + 1_000);
    // A restart once the short one has ended, before any upkeep pruned it: the long one signs from the start.
    const b = await open(tmp.dir, time);
    expect(serialOf(b.ca.current().signer.intermediate)).toBe(long.serial);
    expect(b.ca.current().signer.notAfterMs).toBeGreaterThan(time.nowMs());
    // And the running one, at its next upkeep.
    await a.ca.maintain();
    expect(a.ca.current().authorities[0]!.intermediates.map((i) => serialOf(i.cert))).toEqual([long.serial]);
    expect(serialOf(a.ca.current().signer.intermediate)).toBe(long.serial);
  });

  test('a new root while one is active becomes a prepared authority (activate, or --activate at once); a second new root is refused while one is prepared', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const [r1, r2, r3] = [await RootHolder.create(time, 'R1'), await RootHolder.create(time, 'R2'), await RootHolder.create(time, 'R3')];
    const a = await open(tmp.dir, time);
    const first = await a.ca.installIntermediate({ certPem: await r1.sign((await a.ca.requestIntermediate()).csrPem, time), rootPem: r1.pem });
    const second = await a.ca.installIntermediate({ certPem: await r2.sign((await a.ca.requestIntermediate()).csrPem, time), rootPem: r2.pem });
    expect(second).toMatchObject({ newAuthority: true, state: 'prepared' });
    expect(a.ca.current().signer.authorityId).toBe(first.authority);
    expect(a.ca.current().bundle.authorities).toHaveLength(2);
    const csr3 = (await a.ca.requestIntermediate()).csrPem;
    expect(await codeOf(a.ca.installIntermediate({ certPem: await r3.sign(csr3, time), rootPem: r3.pem }))).toBe('TESSERA_ERR_CA_ALREADY_PREPARED');
    // The refusal kept the request: once R2 signs, R3's certificate can go in.
    await a.ca.activate(second.authority);
    const third = await a.ca.installIntermediate({ certPem: await r3.sign(csr3, time), rootPem: r3.pem, activate: true });
    expect(third).toMatchObject({ newAuthority: true, state: 'active' });
    expect(a.ca.current().authorities.map((x) => [x.record.id, x.record.state])).toEqual([
      [first.authority, 'retired'],
      [second.authority, 'retired'],
      [third.authority, 'active'],
    ]);
    // R1's authority is retired: it takes no new intermediate.
    expect(await codeOf(a.ca.installIntermediate({ certPem: await r1.sign((await a.ca.requestIntermediate()).csrPem, time), rootPem: r1.pem }))).toBe('TESSERA_ERR_CA_ROOT_INVALID');
  });

  test('a managed CA takes an offline root as its successor (--activate); a root whose key is held here takes no installed intermediate', async () => {
    const time = new FakeTime(Date.UTC(2026, 0, 1));
    const holder = await RootHolder.create(time);
    const a = await open(tmp.dir, time, 'managed');
    const managed = a.ca.current().signer.authorityId;
    const done = await a.ca.installIntermediate({ certPem: await holder.sign((await a.ca.requestIntermediate()).csrPem, time), rootPem: holder.pem, activate: true });
    expect(done.state).toBe('active');
    expect(a.ca.current().authorities.map((x) => [x.record.id, x.record.state, x.root.key === null])).toEqual([
      [managed, 'retired', false],
      [done.authority, 'active', true],
    ]);
    const own = a.ca.current().authorities[0]!;
    const ownHolder = RootHolder.of(own.root.cert, own.root.key!);
    expect(await codeOf(a.ca.installIntermediate({ certPem: await ownHolder.sign((await a.ca.requestIntermediate()).csrPem, time), rootPem: ownHolder.pem }))).toBe('TESSERA_ERR_CA_ROOT_INVALID');
    // A retired authority is not rotated, and the offline one never is: maintenance mints nothing.
    time.advance(3 * DAY_MS);
    const events = await a.ca.maintain();
    expect(events.filter((e) => e.event === 'ca.intermediate_rotated')).toEqual([]);
  });

  test('an expired signing intermediate fails issuance closed with TESSERA_ERR_CA_NO_INTERMEDIATE', () => {
    const now = Date.UTC(2026, 0, 1);
    const base = { nowMs: now, ttlMs: 3_600_000, maxTtlMs: 3_600_000, backdateMs: 60_000, requestedTtlMs: 0, issuerNotBeforeMs: now - DAY_MS };
    expect(() => svidValidity({ ...base, issuerNotAfterMs: now - 1 })).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CA_NO_INTERMEDIATE' }));
    expect(svidValidity({ ...base, issuerNotAfterMs: now + 60_000 }).notAfterMs).toBe(now + 60_000);
  });
});
