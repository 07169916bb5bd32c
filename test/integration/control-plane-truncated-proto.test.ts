// Truncated and malformed protobuf against the real `tessera control-plane` process (audit 24b F6): raw SignSvid
// bytes as the audit sent them (a join_token whose declared length runs 40 bytes past the end with the whole valid
// token inside, an int64 ttl_seconds varint cut short, field number 0, a group; audit 27: a join_token whose last
// byte is not UTF-8, which protobufjs read as the token + U+FFFD where Go refuses) are refused INVALID_ARGUMENT /
// TESSERA_ERR_ISSUANCE_BAD_REQUEST; no SVID is issued, the token is not spent, and a well-formed request with it
// still gets its SVID.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SIGN_SVID_PATH } from '../../common/contract/identity-v1.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { type RunningControlPlane, TD, controlPlaneClients, createJoinToken, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';

const ID = `spiffe://${TD}/ns/default/sa/trunc`;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;

const varint = (n: number): Buffer => {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
};
const ld = (field: number, body: Buffer): Buffer => Buffer.concat([varint(field * 8 + 2), varint(body.length), body]);

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
}, 60_000);

afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

/** Sends `body` as the SignSvid request, byte for byte. */
async function rawSignSvid(body: Buffer): Promise<grpc.ServiceError | null> {
  const raw = new grpc.Client(cp.grpc, grpc.credentials.createSsl(Buffer.from(bundlePem), null, null, { checkServerIdentity: () => undefined }), {
    'grpc.ssl_target_name_override': 'tessera-control-plane',
    'grpc.default_authority': 'tessera-control-plane',
  });
  try {
    return await new Promise<grpc.ServiceError | null>((resolve) => {
      raw.makeUnaryRequest(SIGN_SVID_PATH, (b: Buffer) => b, (b: Buffer) => b, body, { deadline: Date.now() + 10_000 }, (e) => resolve(e));
    });
  } finally {
    raw.close();
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  return sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), name, labels);
}

test("the audit's truncated SignSvid messages are refused INVALID_ARGUMENT / BAD_REQUEST, no SVID issued, the token not spent", async () => {
  const csr = await createCsr(generateKeyPair(), { uriSans: [ID] });
  const token = await createJoinToken(cp.dataDir, ID);
  const tok = Buffer.from(token);
  const variants: Record<string, Buffer> = {
    // join_token declares its length + 40 bytes; the message ends after the (valid) token.
    'string past the end': Buffer.concat([ld(1, csr), Buffer.from([0x12]), varint(tok.length + 40), tok]),
    // ttl_seconds (int64) varint cut short at the end.
    'int64 varint cut short': Buffer.concat([ld(1, csr), ld(2, tok), Buffer.from([0x20, 0xff, 0xff, 0xff])]),
    'field number 0': Buffer.concat([Buffer.from([0x02, 0x01, 0x00]), ld(1, csr), ld(2, tok)]),
    'a group': Buffer.concat([ld(1, csr), ld(2, tok), Buffer.from([0x33, 0x34])]),
    'wire type 7': Buffer.concat([ld(1, csr), ld(2, tok), Buffer.from([0x3f, 0x00])]),
    'join_token sent as a varint': Buffer.concat([ld(1, csr), Buffer.from([0x10, 0x05]), ld(2, tok)]),
    'join_token not UTF-8': Buffer.concat([ld(1, csr), ld(2, Buffer.concat([tok, Buffer.from([0xff])]))]),
  };
  const issued = await metric('tessera_issuances_total', { result: 'issued' });
  for (const [name, body] of Object.entries(variants)) {
    const err = await rawSignSvid(body);
    expect(err?.code, name).toBe(grpc.status.INVALID_ARGUMENT);
    expect(errorCode(err), name).toBe('TESSERA_ERR_ISSUANCE_BAD_REQUEST');
  }
  expect(await metric('tessera_issuances_total', { result: 'issued' })).toBe(issued);
  expect(await metric('tessera_issuance_refusals_total', { code: 'TESSERA_ERR_ISSUANCE_BAD_REQUEST' })).toBeGreaterThanOrEqual(Object.keys(variants).length);
  const audited = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).split('\n').filter((l) => l.includes('"svid.refused"') && l.includes('TESSERA_ERR_ISSUANCE_BAD_REQUEST'));
  expect(audited.length).toBeGreaterThanOrEqual(Object.keys(variants).length);
  // The token was never judged: a well-formed request spends it now.
  const client = controlPlaneClients(cp.grpc, bundlePem);
  try {
    const ok = await signSvid(client.identity, { csr, join_token: token });
    expect(ok.err).toBeNull();
    expect(ok.res?.spiffe_id).toBe(ID);
  } finally {
    client.close();
  }
  expect(await metric('tessera_issuances_total', { result: 'issued' })).toBe(issued + 1);
}, 60_000);
