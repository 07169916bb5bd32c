// Hostile input against the real `tessera control-plane` process over grpc-js: CSRs made by the openssl command
// line (good, extra SANs, weak keys), malformed CSRs and messages, Kubernetes projected tokens (valid, wrong
// audience/issuer/signature, expired), oversized messages, an unknown nested config key. Each refusal carries a
// gRPC status and a stable code, is audited, and the server keeps serving. (kill -9 mid-rotation: control-plane-crash.)
import { X509Certificate, checkPrimeSync, createHash, generatePrimeSync, randomBytes, sign as signWith } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type CryptoKey, type JWTPayload, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DISCOVERY_REGISTER_PATH, DISCOVERY_WATCH_PATH } from '../../common/contract/discovery-v1.js';
import { REPORT_PATH, WATCH_PATH } from '../../common/contract/config-v1.js';
import { MINT_JWT_SVID_PATH, SIGN_SVID_PATH, TPM_CHALLENGE_PATH } from '../../common/contract/identity-v1.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair as generatePkiKey, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, createJoinToken, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { bitString, contextTag, octetString, oid, sequence, set, smallInteger, tlv, unsignedInteger } from '../../common/pki/der-writer.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const ISSUER = 'https://kubernetes.default.svc';
const AUDIENCE = 'tessera';
const K8S_BLOCK = `attestors:\n  kubernetes: { issuer: ${ISSUER}, audience: ${AUDIENCE}, jwksFile: ./jwks.json }`;
const INVALID_ARGUMENT = grpc.status.INVALID_ARGUMENT;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;
let client: ReturnType<typeof controlPlaneClients>;
let keys: { es: CryptoKey; rs: CryptoKey; stranger: CryptoKey };

/** A join token from admin.sock (no node start per token: about ten here; `tessera token create` is tested elsewhere). */
const token = (id: string): Promise<string> => createJoinToken(cp.dataDir, id);

async function openssl(args: readonly string[]): Promise<string> {
  const r = await run('openssl', args);
  expect(r.code, `openssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const KEY_COMMANDS = {
  ecparam: (out: string) => ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', out],
  genpkey: (out: string) => ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out],
  rsa1024: (out: string) => ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', out],
  rsa4160: (out: string) => ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4160', '-out', out],
  p384: (out: string) => ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', out],
} as const;

let csrCount = 0;
/** A key and a DER CSR made by the openssl command line, with an empty subject and the given SANs. */
async function opensslCsr(keyKind: keyof typeof KEY_COMMANDS, sans: readonly string[]): Promise<{ csr: Buffer; keyFile: string }> {
  const base = join(dir, `csr-${++csrCount}`);
  await openssl(KEY_COMMANDS[keyKind](`${base}.key`));
  const san = sans.length ? ['-addext', `subjectAltName=${sans.join(',')}`] : [];
  await openssl(['req', '-new', '-key', `${base}.key`, '-subj', '/', ...san, '-outform', 'DER', '-out', `${base}.der`]);
  return { csr: await readFile(`${base}.der`), keyFile: `${base}.key` };
}

async function audit(): Promise<Record<string, unknown>[]> {
  return (await readFile(join(cp.dataDir, 'audit.log'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function expectStillServing(): Promise<void> {
  expect(cp.proc.exitCode).toBeNull();
  expect((await fetch(`http://${cp.admin}/healthz`)).status).toBe(200);
  const ok = await signSvid(client.identity, { csr: await createCsr(generatePkiKey(), {}), join_token: await token(WEB) });
  expect(ok.err).toBeNull();
  expect(ok.res?.spiffe_id).toBe(WEB);
}

/** The control plane's counter `name` for TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE, from its /metrics. */
async function tooLargeCount(name: string): Promise<number> {
  return sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), name, { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE' });
}

/** Sends `body` as the one request message of method `path`, as it is, with a client SVID; the error it ends with. */
function rawCall(path: string, body: Buffer, svid: ClientSvid): Promise<grpc.ServiceError | null> {
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  const raw = (b: Buffer) => b;
  const options = { deadline: Date.now() + 10_000 };
  return new Promise<grpc.ServiceError | null>((resolve) => {
    if (path === SIGN_SVID_PATH || path === MINT_JWT_SVID_PATH || path === TPM_CHALLENGE_PATH || path === REPORT_PATH) {
      c.identity.makeUnaryRequest(path, raw, raw, body, options, (e: grpc.ServiceError | null) => resolve(e));
      return;
    }
    // A stream that is not refused stays open: it ends with no error, and the test fails on that.
    const call = path === DISCOVERY_REGISTER_PATH ? c.identity.makeBidiStreamRequest(path, raw, raw, options) : c.identity.makeServerStreamRequest(path, raw, raw, body, options);
    if (path === DISCOVERY_REGISTER_PATH) (call as grpc.ClientDuplexStream<Buffer, Buffer>).write(body);
    call.on('data', () => {
      call.cancel();
      resolve(null);
    });
    call.on('error', (e: grpc.ServiceError) => resolve(e));
  }).finally(() => c.close());
}

/** A projected service-account token as the kubelet would mint it; `over` replaces claims. */
function saToken(key: CryptoKey, kid: string, alg: 'ES256' | 'RS256', over: JWTPayload = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: ISSUER,
    aud: [AUDIENCE],
    sub: 'system:serviceaccount:payments:checkout',
    iat: now,
    nbf: now,
    exp: now + 600,
    'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'checkout', uid: '0d6e8a2c' }, pod: { name: 'checkout-7d9f', uid: '51a2' } },
    ...over,
  })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .sign(key);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const es = await generateKeyPair('ES256');
  const rs = await generateKeyPair('RS256');
  const stranger = await generateKeyPair('ES256');
  keys = { es: es.privateKey, rs: rs.privateKey, stranger: stranger.privateKey };
  const jwks = {
    keys: [
      { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(rs.publicKey)), kid: 'rs', alg: 'RS256', use: 'sig' },
    ],
  };
  await writeFile(join(dir, 'jwks.json'), JSON.stringify(jwks));
  // Many issuances to one ID here; the per-identity rate limit is not what this file tests.
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, `${K8S_BLOCK}\nsvid: { rateLimit: { burst: 200 } }`));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  client = controlPlaneClients(cp.grpc, bundlePem);
}, 60_000);

afterAll(async () => {
  client?.close();
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

describe('CSRs made by the openssl command line', () => {
  test.each(['ecparam', 'genpkey'] as const)('an EC P-256 key from `openssl %s`: the chain passes `openssl verify` and certifies that key', async (kind) => {
    const { csr, keyFile } = await opensslCsr(kind, [`URI:${WEB}`]);
    const r = await signSvid(client.identity, { csr, join_token: await token(WEB) });
    expect(r.err).toBeNull();
    const [leaf, intermediate] = r.res!.svid_chain.map((d) => new X509Certificate(d));
    expect(r.res!.svid_chain.length).toBe(2);
    const files = { leaf: join(dir, `${kind}-leaf.pem`), intermediate: join(dir, `${kind}-int.pem`), bundle: join(cp.dataDir, 'bundle.pem') };
    await writeFile(files.leaf, leaf!.toString());
    await writeFile(files.intermediate, intermediate!.toString());
    const v = await run('openssl', ['verify', '-CAfile', files.bundle, '-untrusted', files.intermediate, '-purpose', 'sslclient', files.leaf]);
    expect(v.stdout + v.stderr).toContain(': OK');
    expect(v.code).toBe(0);
    expect(await openssl(['x509', '-in', files.leaf, '-noout', '-ext', 'subjectAltName'])).toContain(`URI:${WEB}`);
    // The certificate is for the key openssl made, not one the control plane chose.
    expect(await openssl(['x509', '-in', files.leaf, '-noout', '-pubkey'])).toBe(await openssl(['pkey', '-in', keyFile, '-pubout']));
    // The bundle in the answer is the published one.
    expect(r.res!.bundles[0]!.x509_authorities.map((d) => new X509Certificate(d).toString()).join('')).toBe(bundlePem);
  });

  test('an openssl CSR with no SAN gets the attested ID', async () => {
    const { csr } = await opensslCsr('ecparam', []);
    const r = await signSvid(client.identity, { csr, join_token: await token(WEB) });
    expect(r.err).toBeNull();
    expect(new X509Certificate(r.res!.svid_chain[0]!).subjectAltName).toBe(`URI:${WEB}`);
  });

  test.each([
    ['a DNS name next to the ID', [`URI:${WEB}`, 'DNS:web.default.svc']],
    ['a second URI', [`URI:${WEB}`, `URI:spiffe://${TD}/ns/default/sa/admin`]],
    ['an IP address', [`URI:${WEB}`, 'IP:127.0.0.1']],
  ])('a CSR with an extra SAN (%s) is refused and the token is not spent', async (_name, sans) => {
    const tok = await token(WEB);
    const r = await signSvid(client.identity, { csr: (await opensslCsr('ecparam', sans)).csr, join_token: tok });
    expect(r.err?.code).toBe(INVALID_ARGUMENT);
    expect(errorCode(r.err)).toBe('TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN');
    const retry = await signSvid(client.identity, { csr: (await opensslCsr('ecparam', [`URI:${WEB}`])).csr, join_token: tok });
    expect(retry.err).toBeNull();
  });

  test.each([
    ['RSA-1024', 'rsa1024'],
    ['RSA-4160, over the 4096-bit cap: the same code, refused before its signature is checked', 'rsa4160'],
    ['EC P-384', 'p384'],
  ] as const)('a weak or unsupported key (%s) is refused', async (_name, kind) => {
    const r = await signSvid(client.identity, { csr: (await opensslCsr(kind, [`URI:${WEB}`])).csr, join_token: await token(WEB) });
    expect(r.err?.code).toBe(INVALID_ARGUMENT);
    expect(errorCode(r.err)).toBe('TESSERA_ERR_PKI_UNSUPPORTED_KEY');
    expect(r.err?.details).not.toMatch(/\n\s+at /);
    // openssl's 4,160-bit key generation alone took over 20 s on a loaded machine (load 9).
  }, 90_000);
});

/** Big-endian bytes of `x`, `len` long. */
const bytesOf = (x: bigint, len: number): Buffer => Buffer.from(x.toString(16).padStart(len * 2, '0'), 'hex');
/** EMSA-PKCS1-v1_5 with SHA-256 of `msg`, for a 2048-bit modulus: what an RSA signature decrypts to. */
function pkcs1Sha256(msg: Buffer): bigint {
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(msg).digest()]);
  return BigInt(`0x${Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(256 - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo]).toString('hex')}`);
}
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [m, a % m, 0n, 1n];
  while (r1 !== 0n) {
    const k = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - k * r1, s1, s0 - k * s1];
  }
  return ((s0 % m) + m) % m;
}
function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  for (b %= m; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}
/** A CSR for WEB with the RSA public key (n, e), signed as `sign` says (sha256WithRSAEncryption). */
function rsaCsr(n: bigint, e: bigint, sign: (info: Buffer) => Buffer): Buffer {
  const spki = sequence(sequence(oid('1.2.840.113549.1.1.1'), tlv(0x05)), bitString(sequence(unsignedInteger(bytesOf(n, 256)), unsignedInteger(bytesOf(e, 4)))));
  const san = sequence(sequence(oid('2.5.29.17'), octetString(sequence(tlv(0x86, Buffer.from(WEB))))));
  const info = sequence(smallInteger(0), sequence(), spki, contextTag(0, true, sequence(oid('1.2.840.113549.1.9.14'), set(san))));
  return sequence(info, sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05)), bitString(sign(info)));
}

describe('RSA keys whose private half anyone can compute', () => {
  test('e = 1 (a "signature" needs no key), a prime modulus, close primes: PKI_WEAK_KEY, audited, the token not spent', async () => {
    const p = generatePrimeSync(1024, { bigint: true });
    let q = p + 2n;
    while (!checkPrimeSync(q)) q += 2n;
    const prime = generatePrimeSync(2048, { bigint: true });
    const d = modInverse(65537n, prime - 1n);
    const cases: [string, Buffer][] = [
      // With e = 1 the signature is the padded digest itself: it verifies, and proves nothing.
      ['e = 1', rsaCsr(p * generatePrimeSync(1024, { bigint: true }), 1n, (info) => bytesOf(pkcs1Sha256(info), 256))],
      ['a prime modulus', rsaCsr(prime, 65537n, (info) => bytesOf(modPow(pkcs1Sha256(info), d, prime), 256))],
      ['two close primes', rsaCsr(p * q, 65537n, (info) => bytesOf(modPow(pkcs1Sha256(info), modInverse(65537n, (p - 1n) * (q - 1n)), p * q), 256))],
    ];
    const tok = await token(WEB);
    for (const [name, csr] of cases) {
      const r = await signSvid(client.identity, { csr, join_token: tok });
      expect(r.err?.code, name).toBe(INVALID_ARGUMENT);
      expect(errorCode(r.err), name).toBe('TESSERA_ERR_PKI_WEAK_KEY');
    }
    expect((await audit()).filter((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_PKI_WEAK_KEY').length).toBeGreaterThanOrEqual(cases.length);
    // A real RSA key still gets its SVID with the same token.
    const real = generatePkiKey('rsa-2048');
    const der = Buffer.from(await createCsr(real, { uriSans: [WEB] }));
    expect((await signSvid(client.identity, { csr: der, join_token: tok })).err).toBeNull();
  });

  test('a CSR whose signature algorithm names another key type is refused as a bad signature', async () => {
    const key = generatePkiKey('ec-p256');
    const info = sequence(smallInteger(0), sequence(), key.publicKey.export({ type: 'spki', format: 'der' }), contextTag(0, true));
    const csr = sequence(info, sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05)), bitString(signWith('sha256', info, key.privateKey)));
    const r = await signSvid(client.identity, { csr, join_token: await token(WEB) });
    expect(errorCode(r.err)).toBe('TESSERA_ERR_CSR_BAD_SIGNATURE');
  });
});

describe('malformed requests', () => {
  test('random bytes, truncated DER, a broken signature, no CSR: INVALID_ARGUMENT with a stable code, audited', async () => {
    const good = (await opensslCsr('ecparam', [`URI:${WEB}`])).csr;
    const badSig = Buffer.from(good);
    badSig[badSig.length - 5]! ^= 0x55;
    const cases: [string, Buffer, string][] = [
      ['random', randomBytes(512), 'TESSERA_ERR_CSR_MALFORMED'],
      ['random DER-looking', Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), randomBytes(256)]), 'TESSERA_ERR_CSR_MALFORMED'],
      ['truncated', good.subarray(0, Math.floor(good.length / 2)), 'TESSERA_ERR_CSR_MALFORMED'],
      ['one byte short', good.subarray(0, good.length - 1), 'TESSERA_ERR_CSR_MALFORMED'],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), 'TESSERA_ERR_CSR_MALFORMED'],
      ['bad signature', badSig, 'TESSERA_ERR_CSR_BAD_SIGNATURE'],
      ['empty', Buffer.alloc(0), 'TESSERA_ERR_ISSUANCE_BAD_REQUEST'],
    ];
    const tok = await token(WEB);
    for (const [name, csr, code] of cases) {
      const r = await signSvid(client.identity, { csr, join_token: tok });
      expect(r.err?.code, name).toBe(INVALID_ARGUMENT);
      expect(errorCode(r.err), name).toBe(code);
      expect(r.err?.details, name).toContain(code);
    }
    const lines = await audit();
    for (const [, , code] of cases) expect(lines.some((l) => l['event'] === 'svid.refused' && l['code'] === code)).toBe(true);
    // None of it spent the token.
    expect((await signSvid(client.identity, { csr: good, join_token: tok })).err).toBeNull();
    await expectStillServing();
  });

  test('a request that is not a protobuf message: INVALID_ARGUMENT, TESSERA_ERR_ISSUANCE_BAD_REQUEST, audited', async () => {
    // A bare client that sends bytes as they are (no protobuf encoding on this side).
    const raw = new grpc.Client(cp.grpc, grpc.credentials.createSsl(Buffer.from(bundlePem), null, null, { checkServerIdentity: () => undefined }), {
      'grpc.ssl_target_name_override': 'tessera-control-plane',
      'grpc.default_authority': 'tessera-control-plane',
    });
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        // Field 1 (bytes) claiming 2^28 bytes it does not have.
        raw.makeUnaryRequest(SIGN_SVID_PATH, (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01]), { deadline: Date.now() + 10_000 }, (e) => resolve(e));
      });
      expect(err?.code).toBe(INVALID_ARGUMENT);
      expect(errorCode(err)).toBe('TESSERA_ERR_ISSUANCE_BAD_REQUEST');
    } finally {
      raw.close();
    }
    expect((await audit()).some((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_BAD_REQUEST' && typeof l['size'] === 'number')).toBe(true);
    await expectStillServing();
  });

  test('oversized messages of any size, plain or gzip: RESOURCE_EXHAUSTED with the code, audited and counted; the token stays usable', async () => {
    const tok = await token(WEB);
    const refusedBefore = await tooLargeCount('tessera_issuance_refusals_total');
    // 100 KiB is over limits.maxRequestBytes (64 KiB); 300 KiB, 2 MiB and 10 MiB are over grpc-js' own read limit
    // (4 × that), which grpc-js enforces before any handler runs.
    const sizes = [100 * 1024, 300 * 1024, 2 << 20, 10 << 20];
    for (const size of sizes) {
      const r = await signSvid(client.identity, { csr: Buffer.alloc(size, 0x30), join_token: tok });
      expect([r.err?.code, errorCode(r.err)], `${size} bytes`).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE']);
      expect(r.err?.details, `${size} bytes`).toBe('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE: The request is larger than the control plane accepts.');
      expect((await audit()).some((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE' && (l['size'] as number) > size), `${size} bytes audited`).toBe(true);
    }
    // gzip: a few kB on the wire that inflate past 64 KiB, and past grpc-js' limit.
    const gzip = new (loadTesseraServices().identity)(cp.grpc, grpc.credentials.createSsl(Buffer.from(bundlePem), null, null, { checkServerIdentity: () => undefined }), {
      'grpc.ssl_target_name_override': 'tessera-control-plane',
      'grpc.default_authority': 'tessera-control-plane',
      'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip,
    }) as Parameters<typeof signSvid>[0];
    try {
      for (const size of [100 * 1024, 2 << 20]) {
        const r = await signSvid(gzip, { csr: Buffer.alloc(size, 0x30), join_token: tok });
        expect([r.err?.code, errorCode(r.err)], `gzip ${size} bytes`).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE']);
      }
    } finally {
      gzip.close();
    }
    // The gzip one was refused while inflating (at grpc-js' limit, so the least size it can have), not on the wire.
    expect((await audit()).some((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE' && l['size'] === 256 * 1024 + 1)).toBe(true);
    expect((await tooLargeCount('tessera_issuance_refusals_total')) - refusedBefore).toBe(sizes.length + 2);
    // None of the refusals spent the token.
    expect((await signSvid(client.identity, { csr: await createCsr(generatePkiKey(), {}), join_token: tok })).err).toBeNull();
    await expectStillServing();
  });

  test('every control-plane method answers a message over grpc-js\' read limit with the coded refusal, as one over maxRequestBytes', async () => {
    const key = generatePkiKey();
    const enrolled = await signSvid(client.identity, { csr: await createCsr(key, {}), join_token: await token(WEB) });
    expect(enrolled.err).toBeNull();
    const svid = { keyPem: privateKeyPem(key), chainPem: enrolled.res!.svid_chain.map((d: Buffer) => encodePem('CERTIFICATE', d)).join('') };
    const jwtRefusedBefore = await tooLargeCount('tessera_jwt_svid_refusals_total');
    const registrationsRefusedBefore = await tooLargeCount('tessera_cp_registrations_refused_total');
    const watchRefused = async (service: string) => sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), 'tessera_watch_refusals_total', { service, code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE' });
    const watchRefusedBefore = { config: await watchRefused('config'), discovery: await watchRefused('discovery') };
    for (const size of [100 * 1024, 300 * 1024, 2 << 20]) {
      const body = Buffer.alloc(size, 0x30);
      for (const path of [SIGN_SVID_PATH, MINT_JWT_SVID_PATH, TPM_CHALLENGE_PATH, REPORT_PATH, WATCH_PATH, DISCOVERY_WATCH_PATH, DISCOVERY_REGISTER_PATH]) {
        const err = await rawCall(path, body, svid);
        expect([err?.code, errorCode(err)], `${path}, ${size} bytes`).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE']);
      }
    }
    expect((await audit()).some((l) => l['event'] === 'jwt_svid.refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE')).toBe(true);
    expect((await audit()).some((l) => l['event'] === 'config.watch_refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE')).toBe(true);
    expect((await tooLargeCount('tessera_jwt_svid_refusals_total')) - jwtRefusedBefore).toBe(3);
    // Discovery/Register too: audited and counted (it was neither).
    expect((await audit()).filter((l) => l['event'] === 'discovery.register_refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE')).toHaveLength(3);
    expect((await tooLargeCount('tessera_cp_registrations_refused_total')) - registrationsRefusedBefore).toBe(3);
    // Config/Watch and Discovery/Watch: counted by their code too (they were only audited).
    expect((await watchRefused('config')) - watchRefusedBefore.config).toBe(3);
    expect((await watchRefused('discovery')) - watchRefusedBefore.discovery).toBe(3);
    await expectStillServing();
  });
});

describe('Kubernetes projected service-account tokens over gRPC', () => {
  const CHECKOUT = `spiffe://${TD}/ns/payments/sa/checkout`;

  test.each([
    ['ES256', 'es'],
    ['RS256', 'rs'],
  ] as const)('a valid %s token → spiffe://<td>/ns/<ns>/sa/<sa>, in the inventory and the audit log', async (alg, kid) => {
    const jwt = await saToken(keys[kid], kid, alg);
    const r = await signSvid(client.identity, { csr: await createCsr(generatePkiKey(), { uriSans: [CHECKOUT] }), k8s_sa_token: jwt });
    expect(r.err).toBeNull();
    expect(r.res?.spiffe_id).toBe(CHECKOUT);
    expect(new X509Certificate(r.res!.svid_chain[0]!).subjectAltName).toBe(`URI:${CHECKOUT}`);
    const listed = await tessera(['certs', 'list', '--data-dir', cp.dataDir, '--json']);
    expect((JSON.parse(listed.stdout) as { serial: string; spiffeId: string }[]).find((c) => c.serial === r.res!.serial)?.spiffeId).toBe(CHECKOUT);
    const line = (await audit()).find((l) => l['event'] === 'svid.issued' && l['serial'] === r.res!.serial);
    expect(line?.['attestedAs']).toBe('k8s_psat:ns/payments/sa/checkout');
  });

  test('wrong audience, wrong issuer, another key, expired, unknown kid, bad claims: UNAUTHENTICATED, coded, audited', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, Promise<string>, string][] = [
      ['wrong audience', saToken(keys.es, 'es', 'ES256', { aud: ['vault'] }), 'TESSERA_ERR_ATTESTATION_JWT_AUDIENCE'],
      ['wrong issuer', saToken(keys.es, 'es', 'ES256', { iss: 'https://evil.example' }), 'TESSERA_ERR_ATTESTATION_JWT_ISSUER'],
      ['signed by another key under a trusted kid', saToken(keys.stranger, 'es', 'ES256'), 'TESSERA_ERR_ATTESTATION_JWT_INVALID'],
      ['expired', saToken(keys.es, 'es', 'ES256', { iat: now - 7200, nbf: now - 7200, exp: now - 3600 }), 'TESSERA_ERR_ATTESTATION_JWT_EXPIRED'],
      ['unknown kid', saToken(keys.stranger, 'nobody', 'ES256'), 'TESSERA_ERR_ATTESTATION_JWT_UNKNOWN_KEY'],
      ['sub is not a service account', saToken(keys.es, 'es', 'ES256', { sub: 'admin', 'kubernetes.io': undefined }), 'TESSERA_ERR_ATTESTATION_JWT_CLAIMS'],
      ['not a JWT', Promise.resolve('not.a.jwt'), 'TESSERA_ERR_ATTESTATION_JWT_INVALID'],
      // alg "none" with the valid claims of the first case: never accepted.
      ['alg none', saToken(keys.es, 'es', 'ES256').then((t) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${t.split('.')[1]}.`), 'TESSERA_ERR_ATTESTATION_JWT_INVALID'],
    ];
    for (const [name, jwt, code] of cases) {
      const r = await signSvid(client.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: await jwt });
      expect(r.err?.code, name).toBe(grpc.status.UNAUTHENTICATED);
      expect(errorCode(r.err), name).toBe(code);
      expect(r.res, name).toBeUndefined();
    }
    const refused = (await audit()).filter((l) => l['event'] === 'svid.refused' && l['attestor'] === 'k8s_psat');
    for (const [name, , code] of cases) expect(refused.some((l) => l['code'] === code), name).toBe(true);
    const metrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_attestation_failures_total\{reason="[a-z_]+"\} [1-9]/);
    await expectStillServing();
  });

  test('a valid token with a CSR asking for another ID is refused', async () => {
    const r = await signSvid(client.identity, { csr: await createCsr(generatePkiKey(), { uriSans: [WEB] }), k8s_sa_token: await saToken(keys.es, 'es', 'ES256') });
    expect(r.err?.code).toBe(INVALID_ARGUMENT);
    expect(errorCode(r.err)).toBe('TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN');
  });
});

describe('config errors', () => {
  test.each([
    ['a nested unknown key', `attestors:\n  kubernetes:\n    issuer: ${ISSUER}\n    audience: ${AUDIENCE}\n    jwksFile: ./jwks.json\n    audiences: [x]`, 'attestors.kubernetes.audiences', ':12'],
    ['a misspelt key in a flow map', 'svid: { tll: 1h }', 'svid.tll', ':7'],
  ])('%s: exit 1 with file:line and the key on stderr, nothing started', async (_name, extra, key, line) => {
    const { dir: d, cleanup: clean } = await makeTempDir();
    try {
      const file = await writeControlPlaneConfig(d, extra);
      const r = await tessera(['control-plane', '--config', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}${line}`);
      expect(r.stderr).toContain(key);
      expect(r.stderr).toContain('TESSERA_ERR_CONFIG_INVALID');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
      // Validated before anything is touched: no data dir was made.
      expect(existsSync(join(d, 'data'))).toBe(false);
    } finally {
      await clean();
    }
  });
});
