// A proxy whose own identity the operator bans, seen through its Workload API (audit 54b F6): real control plane,
// real attested proxy, a generic Workload API client. Before, a banned proxy (its SVID not ready, renewals and
// Config/Watch refused with the ban's code) went on handing its workload the cached JWT-SVID and answered its own
// ID's tokens valid: its deny-list never names its own ID, since the control plane ends a banned caller's stream
// instead of sending it the ban. Now the JWT side follows the ban the control plane refused the SVID for: an ID ban
// refuses FetchJWTSVID (PermissionDenied, cache dropped) and the ID's tokens at ValidateJWTSVID; a serial ban
// refuses FetchJWTSVID until a new SVID is installed (the ID's tokens still validate); a lifted ID ban, or a new
// SVID after a serial ban, lets both work again.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ERROR_CODE_METADATA } from '../../common/contract/error-metadata.js';
import { type RunningControlPlane, TD, createJoinToken, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';
import { type WorkloadApi, connectWorkloadApi } from '../helpers/workload-api-client.js';

const WL = `spiffe://${TD}/ns/default/sa/wl`;
/** How long the proxy may take to learn of a ban or its lifting (bounded polling; well under a second typically). */
const PROPAGATION_MS = 20_000;
/** How long it may take to hold an SVID again once a ban is lifted or a new join token given: the retry backoff (30 s at most, ±20 %). */
const RECOVERY_MS = 45_000;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let px: ProxyProcess;
let wl: WorkloadApi;

async function cli(args: string[]) {
  const r = await tessera([...args, '--data-dir', cp.dataDir]);
  expect(r.code, `tessera ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** The proxy's /ready status: 503 once the control plane refused its SVID as revoked. */
const ready = async () => (await fetch(`http://127.0.0.1:${px.admin}/ready`)).status;
const token = async (audience: string[]) => {
  const r = await wl.fetchJwt({ audience });
  expect(r.err, r.err?.details).toBeNull();
  return r.res.svids[0]!.svid;
};
const codeOf = (err: grpc.ServiceError | null) => err?.metadata.get(ERROR_CODE_METADATA)[0];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  px = await startAttestedProxy(cp, dir, 'wl', WL, 'workloadApi: { socket: wl.sock }\n');
  wl = connectWorkloadApi(join(dir, 'wl.sock'));
}, 90_000);

afterAll(async () => {
  wl?.client.close();
  await px?.stop();
  await cp?.stop();
  await cleanup?.();
});

test('an ID ban: no cached or new JWT-SVID, the ID\'s tokens refused by ValidateJWTSVID; lifted, both work again', async () => {
  const before = await token(['svc-a']);
  expect((await wl.validate('svc-a', before)).err).toBeNull();

  await cli(['revoke', 'id', '--spiffe-id', WL, '--reason', 'compromised workload']);
  await until('the proxy learns its SVID is revoked (/ready 503)', async () => (await ready()) === 503, PROPAGATION_MS, 50);

  // The cached token (same audience) and a new one (another audience) alike.
  for (const audience of [['svc-a'], ['svc-b']]) {
    const r = await wl.fetchJwt({ audience });
    expect(r.err?.code, JSON.stringify(audience)).toBe(grpc.status.PERMISSION_DENIED);
    expect(r.err?.details).toMatch(/^TESSERA_ERR_REVOCATION_ID_BANNED: /);
    expect(codeOf(r.err)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
  }
  const v = await wl.validate('svc-a', before);
  expect(v.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(codeOf(v.err)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
  const m = await metricsText(px.admin);
  expect(sumSeries(m, 'tessera_workload_api_jwt_calls_total', { call: 'fetch', result: 'refused', reason: 'revoked' })).toBe(2);
  expect(sumSeries(m, 'tessera_workload_api_jwt_calls_total', { call: 'validate', result: 'refused', reason: 'revoked' })).toBe(1);

  await cli(['revoke', 'lift', '--spiffe-id', WL]);
  await until('the proxy holds an SVID again (/ready 200)', async () => (await ready()) === 200, RECOVERY_MS, 100);
  // The cache was dropped: a token signed after the lifting, which validates, as the one from before the ban does again.
  const after = await token(['svc-a']);
  expect(after).not.toBe(before);
  expect((await wl.validate('svc-a', after)).err).toBeNull();
  expect((await wl.validate('svc-a', before)).err).toBeNull();
}, 120_000);

test('a serial ban of the proxy\'s SVID: no JWT-SVID until a new SVID (a new join token); the ID\'s tokens still validate', async () => {
  const before = await token(['svc-c']);
  const certs = (await (await fetch(`http://127.0.0.1:${px.admin}/certs`)).json()) as { serial: string };
  expect(certs.serial).toMatch(/^[0-9a-f]+$/i);

  await cli(['revoke', 'serial', '--serial', certs.serial]);
  await until('the proxy learns its SVID is revoked (/ready 503)', async () => (await ready()) === 503, PROPAGATION_MS, 50);
  for (const audience of [['svc-c'], ['svc-d']]) {
    const r = await wl.fetchJwt({ audience });
    expect(r.err?.code, JSON.stringify(audience)).toBe(grpc.status.PERMISSION_DENIED);
    expect(codeOf(r.err)).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
  }
  expect((await wl.validate('svc-c', before)).err).toBeNull();

  // The runbook's way back for a proxy attested with a join token: a new token in its file; it attests afresh (a
  // new serial, the banned one staying banned) and has JWT-SVIDs again.
  await writeFile(join(dir, 'wl.token'), await createJoinToken(cp.dataDir, WL));
  await until('the proxy holds a new SVID (/ready 200)', async () => (await ready()) === 200, RECOVERY_MS, 100);
  expect(((await (await fetch(`http://127.0.0.1:${px.admin}/certs`)).json()) as { serial: string }).serial).not.toBe(certs.serial);
  const after = await token(['svc-c']);
  expect(after).not.toBe(before);
  expect((await wl.validate('svc-c', after)).err).toBeNull();
}, 120_000);
