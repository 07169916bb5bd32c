// Three control-plane replicas on one real PostgreSQL (issue 20, "Bad input and faults"): a join token minted on r1
// and redeemed at the same moment on r2 and r3 gives exactly one SVID (the other call is refused with
// TESSERA_ERR_ATTESTATION_TOKEN_USED) and the shared inventory holds exactly one; SQL injection attempts through
// every operator input (SPIFFE IDs for tokens, ban values, break-glass patterns, reasons and names, authority ids,
// token ids, query parameters, the replica's own name) are refused by validation with a coded error or stored
// verbatim, never executed: the schema and the rows are intact afterwards and issuance still works. A JWT-SVID minted on
// one replica validates against the bundle every other replica publishes (the signing keys are in the database).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../common/errors.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { validateJwtSvid } from '../../common/spiffe/jwt-svid.js';
import { parseSpiffeBundle } from '../../common/spiffe/spiffe-bundle.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { controlPlaneClients, createJoinToken, errorCode, signSvid, TD } from '../helpers/control-plane.js';
import { caShape, caStatus, dbQuery, type HaReplica, startHaReplicas } from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

/** Classic injection shapes: quote breaks, stacked statements, comments, placeholders, backslash escapes. */
const EVIL = [
  "x'; DROP TABLE join_tokens; --",
  "x' OR '1'='1",
  'x"; DELETE FROM issuances; --',
  "x'); TRUNCATE audit, revocations, break_glass CASCADE; --",
  '$1; SELECT pg_sleep(30); --',
  "x\\'; DROP TABLE ca_state CASCADE; --",
  "'; UPDATE ca_state SET state_json = '{}'; --",
  '%_*; DROP SCHEMA public CASCADE',
] as const;
/** The third replica's own name (store.replica) is an injection attempt too. */
const EVIL_REPLICA = "r3'); DROP TABLE leader_term; --";

let server: PostgresDatabase;
let dir: string;
let cleanup: () => Promise<void>;
let replicas: HaReplica[] = [];

beforeAll(async () => {
  server = await openPostgresDatabase();
  ({ dir, cleanup } = await makeTempDir());
  replicas = await startHaReplicas(dir, server.url, 3, { names: ['r1', 'r2', EVIL_REPLICA] });
}, 120_000);

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await server?.destroy();
  await cleanup?.();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`),
  );
}

async function bundlePem(r: HaReplica): Promise<string> {
  return readFile(join(r.dataDir, 'bundle.pem'), 'utf8');
}

/** Resolves when the channel is connected (so two calls fired together are not ordered by their TLS handshakes). */
function connected(client: grpc.Client): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
}

describe('HA: one join token redeemed on two replicas at once', () => {
  test('minted on r1, SignSvid on r2 and r3 at the same moment: exactly one SVID, the other TOKEN_USED; the inventory holds one', async () => {
    const [r1, r2, r3] = replicas as [HaReplica, HaReplica, HaReplica];
    const c2 = controlPlaneClients(r2.grpc, await bundlePem(r2));
    const c3 = controlPlaneClients(r3.grpc, await bundlePem(r3));
    try {
      await Promise.all([connected(c2.identity), connected(c3.identity)]);
      const winners: string[] = [];
      for (let round = 0; round < 8; round++) {
        const id = `spiffe://${TD}/ns/race/sa/w${round}`;
        const token = await createJoinToken(r1.dataDir, id, 60_000);
        const [csr2, csr3] = await Promise.all([createCsr(generateKeyPair(), {}), createCsr(generateKeyPair(), {})]);
        const [a2, a3] = await Promise.all([signSvid(c2.identity, { csr: csr2, join_token: token }), signSvid(c3.identity, { csr: csr3, join_token: token })]);
        const ok = [a2, a3].filter((a) => a.res !== undefined && a.err === null);
        const refused = [a2, a3].filter((a) => a.err !== null);
        expect(ok.length, `round ${round}: ${a2.err?.message} / ${a3.err?.message}`).toBe(1);
        expect(refused.length).toBe(1);
        expect(errorCode(refused[0]!.err)).toBe('TESSERA_ERR_ATTESTATION_TOKEN_USED');
        expect(refused[0]!.err!.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(ok[0]!.res!.spiffe_id).toBe(id);
        winners.push(a2.res ? 'r2' : 'r3');
        // The shared inventory, read on r1 (which issued nothing): exactly the winner's SVID.
        const rows = (await adminRequest<{ serial: string; spiffeId: string }[]>(r1.dataDir, 'GET', '/v1/certs')).filter((row) => row.spiffeId === id);
        expect(rows.map((row) => row.serial)).toEqual([ok[0]!.res!.serial]);
      }
      const issued = await dbQuery<{ n: string }>(server.url, "SELECT count(*) AS n FROM issuances WHERE spiffe_id LIKE 'spiffe://example.org/ns/race/%'");
      expect(Number(issued[0]!.n)).toBe(8);
      console.info(`ha-token-race: winners ${winners.join(' ')}`);
    } finally {
      c2.close();
      c3.close();
    }
  }, 60_000);
});

describe('HA: SQL injection through every operator input', () => {
  test('refused by validation with a coded error, or stored verbatim; the tables are intact', async () => {
    const [r1, r2, r3] = replicas as [HaReplica, HaReplica, HaReplica];
    const tables = async () => (await dbQuery<{ t: string }>(server.url, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")).map((r) => r.t);
    const counts = async () =>
      Object.fromEntries(
        await Promise.all(['issuances', 'join_tokens', 'revocations', 'break_glass', 'ca_state', 'ca_material', 'leader_term', 'audit'].map(async (t) => [t, Number((await dbQuery<{ n: string }>(server.url, `SELECT count(*) AS n FROM ${t}`))[0]!.n)] as const)),
      );
    const tablesBefore = await tables();
    expect(tablesBefore).toEqual(expect.arrayContaining(['issuances', 'join_tokens', 'revocations', 'break_glass', 'ca_state', 'ca_material', 'leader_term', 'audit']));
    const before = await counts();
    const caBefore = await dbQuery<{ version: string; state_json: string }>(server.url, 'SELECT version, state_json FROM ca_state');
    const refusals: string[] = [];
    const refused = async (what: string, p: Promise<unknown>, code: string | RegExp) => {
      const got = await codeOf(p);
      if (typeof code === 'string') expect(got, what).toBe(code);
      else expect(got, what).toMatch(code);
      refusals.push(got);
    };
    const admin = [r1, r2, r3];

    for (const [i, evil] of EVIL.entries()) {
      const at = admin[i % 3]!;
      // SPIFFE IDs for join tokens: refused by the SPIFFE ID parser (only a-z A-Z 0-9 . - _ in a path segment).
      await refused(`token for ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/tokens', { spiffeId: `spiffe://${TD}/ns/${evil}` }), /^TESSERA_ERR_SPIFFE_ID_/);
      // Ban values: refused as not a SPIFFE ID / not a serial; lifting them too.
      await refused(`ban id ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/revocations', { kind: 'spiffe_id', value: `spiffe://${TD}/${evil}`, reason: 'r' }), 'TESSERA_ERR_REVOCATION_INVALID');
      await refused(`ban serial ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/revocations', { kind: 'serial', value: evil, reason: 'r' }), 'TESSERA_ERR_REVOCATION_INVALID');
      await refused(`lift ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/revocations/lift', { kind: 'spiffe_id', value: evil }), 'TESSERA_ERR_REVOCATION_INVALID');
      await refused(`ban kind ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/revocations', { kind: evil, value: `spiffe://${TD}/ns/a/sa/b` }), 'TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
      // Token revocation by id (validated as hex) and by value (hashed, so never reaches SQL as text).
      await refused(`revoke token id ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/tokens/revoke', { tokenId: evil }), 'TESSERA_ERR_REVOCATION_INVALID');
      await refused(`revoke token ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/tokens/revoke', { token: evil }), 'TESSERA_ERR_REVOCATION_NOT_FOUND');
      // Break-glass patterns.
      const grant = { to: `spiffe://${TD}/ns/a/sa/b`, from: [`spiffe://${TD}/ns/c/sa/d`], forMs: 60_000, reason: 'r', createdBy: 't' };
      await refused(`break-glass to ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/break-glass', { ...grant, to: `spiffe://${TD}/${evil}` }), 'TESSERA_ERR_BREAK_GLASS_INVALID');
      await refused(`break-glass from ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/break-glass', { ...grant, from: [evil] }), 'TESSERA_ERR_BREAK_GLASS_INVALID');
      // Authority ids: looked up, never found.
      await refused(`activate ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/ca/activate', { authority: evil }), 'TESSERA_ERR_CA_UNKNOWN_AUTHORITY');
      await refused(`retire ${evil}`, adminRequest(at.dataDir, 'POST', '/v1/ca/retire', { authority: evil }), 'TESSERA_ERR_CA_UNKNOWN_AUTHORITY');
      // A query parameter.
      await refused(`certs ${evil}`, adminRequest(at.dataDir, 'GET', `/v1/certs?expiringWithinMs=${encodeURIComponent(evil)}`), 'TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
    }

    // The same through the CLI, as an operator would type them (one of each command family).
    const cli = async (args: string[], code: RegExp) => {
      const out = await tessera(args);
      expect(out.code, `${args.join(' ')}: ${out.stderr}`).not.toBe(0);
      expect(out.stderr, args.join(' ')).toMatch(code);
      refusals.push(out.stderr.trim());
    };
    // Every command checks a SPIFFE ID or pattern before it calls: a usage error naming the flag and the SPIFFE code
    // (the control plane's own refusal of them is the adminRequest calls above).
    await cli(['token', 'create', '--data-dir', r2.dataDir, '--spiffe-id', `spiffe://${TD}/ns/${EVIL[0]}`], /is not a SPIFFE ID \(TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR: path segment .* holds "'"/);
    await cli(['revoke', 'id', '--data-dir', r3.dataDir, '--spiffe-id', `spiffe://${TD}/${EVIL[1]}`], /TESSERA_ERR_CLI_USAGE: --spiffe-id .* is not a SPIFFE ID \(TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR: /);
    await cli(['revoke', 'serial', '--data-dir', r1.dataDir, '--serial', EVIL[2]], /TESSERA_ERR_REVOCATION_INVALID/);
    await cli(['revoke', 'token', '--data-dir', r2.dataDir, '--token-id', EVIL[3]], /TESSERA_ERR_REVOCATION_INVALID/);
    await cli(['policy', 'break-glass', '--data-dir', r3.dataDir, '--to', EVIL[4], '--from', `spiffe://${TD}/ns/c/sa/d`, '--for', '1m', '--reason', 'r'], /TESSERA_ERR_CLI_USAGE: --to .* is not a SPIFFE ID pattern \(TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME: /);
    await cli(['policy', 'break-glass', '--data-dir', r3.dataDir, '--to', `spiffe://${TD}/ns/c/sa/d`, '--from', `spiffe://${TD}/ns/c/sa/d`, '--for', '1m', '--reason', EVIL[4]!.repeat(40)], /TESSERA_ERR_BREAK_GLASS_INVALID/);
    await cli(['ca', 'activate', '--data-dir', r1.dataDir, '--authority', EVIL[5]], /TESSERA_ERR_CA_UNKNOWN_AUTHORITY/);
    await cli(['ca', 'retire', '--data-dir', r2.dataDir, '--authority', EVIL[6]], /TESSERA_ERR_CA_UNKNOWN_AUTHORITY/);

    // A join token value in SignSvid: hashed, unknown.
    const c1 = controlPlaneClients(r1.grpc, await bundlePem(r1));
    try {
      for (const evil of EVIL.slice(0, 3)) {
        const a = await signSvid(c1.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: evil });
        expect(errorCode(a.err), evil).toBe('TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN');
      }
    } finally {
      c1.close();
    }

    // Free text is stored verbatim: ban reasons and names, break-glass reasons and names.
    const stored: { value: string; evil: string; grant: string }[] = [];
    for (const [i, evil] of EVIL.entries()) {
      const at = admin[i % 3]!;
      const value = `spiffe://${TD}/ns/injected/sa/victim-${i}`;
      const ban = await adminRequest<{ value: string; reason: string; createdBy: string; created: boolean }>(at.dataDir, 'POST', '/v1/revocations', { kind: 'spiffe_id', value, reason: evil, createdBy: evil });
      expect(ban).toMatchObject({ value, reason: evil, createdBy: evil, created: true });
      const grant = await adminRequest<{ id: string; reason: string }>(at.dataDir, 'POST', '/v1/break-glass', {
        to: `spiffe://${TD}/ns/injected/sa/*`,
        from: [`spiffe://${TD}/ns/injected/**`],
        forMs: 600_000,
        reason: evil,
        createdBy: evil,
      });
      expect(grant.reason).toBe(evil);
      stored.push({ value, evil, grant: grant.id });
    }
    for (const s of stored) {
      expect(await dbQuery(server.url, 'SELECT reason, created_by FROM revocations WHERE kind = $1 AND value = $2', ['spiffe_id', s.value])).toEqual([{ reason: s.evil, created_by: s.evil }]);
      expect(await dbQuery(server.url, 'SELECT reason, created_by, to_pattern FROM break_glass WHERE id = $1', [s.grant])).toEqual([{ reason: s.evil, created_by: s.evil, to_pattern: `spiffe://${TD}/ns/injected/sa/*` }]);
    }
    // Every replica sees the others' bans (shared table + change feed), by the exact value.
    for (const r of admin) {
      await until(`${r.name} lists every injected ban`, async () => {
        const bans = await adminRequest<{ value: string; reason: string }[]>(r.dataDir, 'GET', '/v1/revocations');
        return stored.every((s) => bans.some((b) => b.value === s.value && b.reason === s.evil));
      }, 10_000, 200);
    }
    // The replica named with an injection attempt runs under exactly that name.
    const apps = (await dbQuery<{ a: string }>(server.url, 'SELECT DISTINCT application_name AS a FROM pg_stat_activity WHERE datname = $1', [server.database])).map((r) => r.a);
    expect(apps).toContain(`tessera-control-plane ${EVIL_REPLICA}`.slice(0, 63));

    // Intact: the same tables, no row lost, the CA untouched, and issuance still works on every replica.
    expect(await tables()).toEqual(tablesBefore);
    const after = await counts();
    for (const t of ['issuances', 'join_tokens', 'ca_state', 'ca_material', 'leader_term', 'audit'] as const) expect(after[t], t).toBeGreaterThanOrEqual(before[t]!);
    expect(after.revocations).toBe(before.revocations! + EVIL.length);
    expect(after.break_glass).toBe(before.break_glass! + EVIL.length);
    expect(await dbQuery(server.url, 'SELECT version, state_json FROM ca_state')).toEqual(caBefore);
    expect(new Set(await Promise.all(admin.map(async (r) => caShape(await caStatus(r))))).size).toBe(1);
    for (const r of admin) {
      const id = `spiffe://${TD}/ns/after/sa/${r === r3 ? 'r3' : r.name}`;
      const token = await createJoinToken(r.dataDir, id);
      const c = controlPlaneClients(r.grpc, await bundlePem(r));
      try {
        const a = await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token });
        expect(a.err, r.name).toBeNull();
        expect(a.res?.spiffe_id).toBe(id);
      } finally {
        c.close();
      }
    }
    console.info(`ha-injection: ${refusals.length} refusals, ${stored.length * 2} rows stored verbatim`);
  }, 90_000);

  test('free text PostgreSQL cannot store (a NUL character) is refused with a coded validation error, not an internal one', async () => {
    const r1 = replicas[0]!;
    const grant = { to: `spiffe://${TD}/ns/a/sa/b`, from: [`spiffe://${TD}/ns/c/sa/d`], forMs: 60_000, reason: 'r', createdBy: 't' };
    const outcomes: Record<string, string> = {};
    for (const [what, path, body] of [
      ['ban reason', '/v1/revocations', { kind: 'spiffe_id', value: `spiffe://${TD}/ns/nul/sa/a`, reason: 'a\u0000b' }],
      ['ban createdBy', '/v1/revocations', { kind: 'spiffe_id', value: `spiffe://${TD}/ns/nul/sa/b`, reason: 'r', createdBy: 'a\u0000b' }],
      ['break-glass reason', '/v1/break-glass', { ...grant, reason: 'a\u0000b' }],
      ['break-glass createdBy', '/v1/break-glass', { ...grant, createdBy: 'a\u0000b' }],
    ] as const) {
      outcomes[what] = await codeOf(adminRequest(r1.dataDir, 'POST', path, body));
    }
    // A name may be cleaned up and stored; a reason is the operator's words: refused, so they can say it again.
    expect(outcomes).toEqual({
      'ban reason': 'TESSERA_ERR_REVOCATION_INVALID',
      'ban createdBy': expect.stringMatching(/^(ok|TESSERA_ERR_REVOCATION_INVALID)$/),
      'break-glass reason': 'TESSERA_ERR_BREAK_GLASS_INVALID',
      'break-glass createdBy': expect.stringMatching(/^(ok|TESSERA_ERR_BREAK_GLASS_INVALID)$/),
    });
  }, 30_000);
});

describe('HA: JWT-SVID keys are shared', () => {
  test('a JWT-SVID minted on r1 validates against the SPIFFE bundle r2 and r3 publish', async () => {
    const [r1, r2, r3] = replicas as [HaReplica, HaReplica, HaReplica];
    // An SVID for the caller, from r1 (join token), then the JWT-SVID from r1 over mTLS with it.
    const id = `spiffe://${TD}/ns/jwt/sa/caller`;
    const key = generateKeyPair();
    const attest = controlPlaneClients(r1.grpc, await bundlePem(r1));
    let svid: { keyPem: string; chainPem: string };
    try {
      const a = await signSvid(attest.identity, { csr: await createCsr(key, {}), join_token: await createJoinToken(r1.dataDir, id, 60_000) });
      expect(a.err).toBeNull();
      const chainPem = a.res!.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join('');
      svid = { keyPem: privateKeyPem(key), chainPem };
    } finally {
      attest.close();
    }
    const c1 = controlPlaneClients(r1.grpc, await bundlePem(r1), svid);
    let token: string;
    try {
      token = await new Promise<string>((resolve, reject) =>
        c1.identity.MintJwtSvid!({ audience: ['ha-test'] }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: { token: string }) => (err ? reject(err) : resolve(res.token))),
      );
    } finally {
      c1.close();
    }
    for (const r of [r2, r3]) {
      const bundle = parseSpiffeBundle(await readFile(join(r.dataDir, 'bundle.spiffe.json'), 'utf8'));
      const claims = validateJwtSvid(token, 'ha-test', new Map([[TD, bundle.jwtAuthorities]]), Date.now());
      expect(claims.spiffeId.toString()).toBe(id);
    }
  });
});
