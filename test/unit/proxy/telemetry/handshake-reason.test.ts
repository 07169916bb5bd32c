// classifyTlsError: real handshake failures produced on loopback with real sockets, plus table rows for codes
// that cannot be provoked locally (alerts from other TLS stacks, Tessera SVID verification failures).
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { beforeAll, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { HANDSHAKE_REASONS, type HandshakeReason, classifyTlsError, isHandshakeReason } from '../../../../proxy/src/telemetry/handshake-reason.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const HOUR = 3_600_000;
const ID = 'spiffe://example.org/ns/default/sa/api';

interface Outcome {
  server?: unknown;
  client?: unknown;
  authorizationError?: unknown;
}
type Side = keyof Outcome;

/** Runs one handshake against a real tls.Server on 127.0.0.1:0 and returns what each side reported. */
async function attempt(serverOpts: tls.TlsOptions, connect: (port: number) => net.Socket, side: Side): Promise<Outcome> {
  const out: Outcome = {};
  const sockets: net.Socket[] = [];
  const server = tls.createServer(serverOpts, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    out.authorizationError ??= s.authorizationError ?? null;
    s.end();
  });
  server.on('tlsClientError', (e) => {
    out.server ??= e;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const c = connect((server.address() as net.AddressInfo).port);
  c.on('error', (e) => {
    out.client ??= e;
  });
  try {
    await until('the handshake outcome', () => out[side] !== undefined, 3_000, 5);
    return out;
  } finally {
    c.destroy();
    for (const s of sockets) s.destroy();
    server.close();
  }
}

const plain = (port: number, bytes: string | Buffer) => {
  const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
  return s;
};

let ca: TestCa;
let other: TestCa;
let good: MintedSvid;
let expired: MintedSvid;
let future: MintedSvid;
let badSig: MintedSvid;
let foreign: MintedSvid;

beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: 'example.org' });
  other = await TestCa.create({ trustDomain: 'other.org' });
  const now = Date.now();
  good = await ca.mintSvid(ID);
  expired = await ca.mintSvid(ID, { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) });
  future = await ca.mintSvid(ID, { notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) });
  badSig = await ca.mintSvid(ID, { broken: 'bad-signature' });
  foreign = await other.mintSvid('spiffe://other.org/ns/default/sa/web');
});

const srv = (svid: MintedSvid, extra: tls.TlsOptions = {}): tls.TlsOptions => ({ key: svid.keyPem, cert: svid.chainPem, ...extra });
const noCheck = () => undefined;

// [name, server options, client, side whose error is classified, expected reason]
const realCases: [string, () => tls.TlsOptions, (port: number) => net.Socket, Side, HandshakeReason][] = [
  ['HTTP request to a TLS port', () => srv(good), (p) => plain(p, 'GET / HTTP/1.1\r\n\r\n'), 'server', 'plaintext'],
  ['non-TLS bytes to a TLS port', () => srv(good), (p) => plain(p, Buffer.alloc(64, 0x16)), 'server', 'plaintext'],
  [
    'TLS 1.2 client vs TLS 1.3-min server (server side)',
    () => srv(good, { minVersion: 'TLSv1.3' }),
    (p) => tls.connect({ port: p, host: '127.0.0.1', maxVersion: 'TLSv1.2', rejectUnauthorized: false }),
    'server',
    'version',
  ],
  [
    'TLS 1.2 client vs TLS 1.3-min server (client side alert)',
    () => srv(good, { minVersion: 'TLSv1.3' }),
    (p) => tls.connect({ port: p, host: '127.0.0.1', maxVersion: 'TLSv1.2', rejectUnauthorized: false }),
    'client',
    'version',
  ],
  [
    'no client certificate, mTLS server (server side)',
    () => srv(good, { requestCert: true, rejectUnauthorized: true, ca: ca.bundlePem() }),
    (p) => tls.connect({ port: p, host: '127.0.0.1', rejectUnauthorized: false }),
    'server',
    'no_client_cert',
  ],
  [
    'no client certificate, mTLS server (client side, TLS 1.3 certificate_required alert)',
    () => srv(good, { requestCert: true, rejectUnauthorized: true, ca: ca.bundlePem() }),
    (p) => tls.connect({ port: p, host: '127.0.0.1', rejectUnauthorized: false }),
    'client',
    'no_client_cert',
  ],
  ['silent client, handshake timeout', () => srv(good, { handshakeTimeout: 100 }), (p) => net.connect(p, '127.0.0.1'), 'server', 'timeout'],
  [
    'client resets mid-handshake',
    () => srv(good),
    (p) => {
      // A truncated ClientHello record header, then RST.
      const s = net.connect(p, '127.0.0.1', () => {
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00]));
        setTimeout(() => s.resetAndDestroy(), 30);
      });
      return s;
    },
    'server',
    'protocol',
  ],
  [
    'server chain from an unknown CA',
    () => srv(good),
    (p) => tls.connect({ port: p, host: '127.0.0.1', ca: other.bundlePem(), checkServerIdentity: noCheck }),
    'client',
    'unknown_ca',
  ],
  [
    'expired server SVID',
    () => srv(expired),
    (p) => tls.connect({ port: p, host: '127.0.0.1', ca: ca.bundlePem(), checkServerIdentity: noCheck }),
    'client',
    'expired',
  ],
  [
    'server SVID not yet valid',
    () => srv(future),
    (p) => tls.connect({ port: p, host: '127.0.0.1', ca: ca.bundlePem(), checkServerIdentity: noCheck }),
    'client',
    'not_yet_valid',
  ],
  [
    'server SVID with a bad signature',
    () => srv(badSig),
    (p) => tls.connect({ port: p, host: '127.0.0.1', ca: ca.bundlePem(), checkServerIdentity: noCheck }),
    'client',
    'bad_signature',
  ],
  [
    'default name check against an SVID (no DNS SAN)',
    () => srv(good),
    (p) => tls.connect({ port: p, host: '127.0.0.1', servername: 'api.example.org', ca: ca.bundlePem() }),
    'client',
    'id_mismatch',
  ],
  [
    'client SVID from an unknown CA, verification deferred (authorizationError)',
    () => srv(good, { requestCert: true, rejectUnauthorized: false, ca: ca.bundlePem() }),
    (p) => tls.connect({ port: p, host: '127.0.0.1', key: foreign.keyPem, cert: foreign.chainPem, ca: ca.bundlePem(), checkServerIdentity: noCheck }),
    'authorizationError',
    'unknown_ca',
  ],
];

describe('classifyTlsError on real handshake failures', () => {
  test.each(realCases)('%s', async (_name, serverOpts, connect, side, want) => {
    const out = await attempt(serverOpts(), connect, side);
    const err = out[side];
    expect(err, `no ${side} error`).toBeTruthy();
    expect(classifyTlsError(err), `${side}: ${(err as { code?: string }).code ?? String(err)}`).toBe(want);
  });
});

const tesseraErr = (code: ConstructorParameters<typeof TesseraError>[0]) => new TesseraError(code);
const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });

// Codes and shapes that a local Node peer does not produce, or that come from Tessera's own verification.
const tableCases: [string, unknown, HandshakeReason][] = [
  ['HTTPS proxy CONNECT', coded('ERR_SSL_HTTPS_PROXY_REQUEST'), 'plaintext'],
  ['no protocols available', coded('ERR_SSL_NO_PROTOCOLS_AVAILABLE'), 'version'],
  ['TLS 1.x protocol_version alert', coded('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'), 'version'],
  ['inappropriate fallback alert', coded('ERR_SSL_TLSV1_ALERT_INAPPROPRIATE_FALLBACK'), 'version'],
  ['unknown_ca alert', coded('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 'unknown_ca'],
  ['certificate_expired alert (OpenSSL 3.0 name)', coded('ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED'), 'expired'],
  ['bad_certificate alert (OpenSSL 3.5 name)', coded('ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE'), 'bad_svid'],
  ['decrypt_error alert', coded('ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR'), 'bad_signature'],
  ['handshake_failure alert', coded('ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE'), 'protocol'],
  ['an unlisted alert', coded('ERR_SSL_TLSV1_ALERT_SOMETHING_NEW'), 'protocol'],
  ['an unlisted OpenSSL error', coded('ERR_SSL_SOMETHING_NEW'), 'protocol'],
  ['EPIPE during handshake', coded('EPIPE'), 'protocol'],
  ['ECONNRESET during handshake', coded('ECONNRESET', 'socket hang up'), 'protocol'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'unknown_ca'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', coded('UNABLE_TO_GET_ISSUER_CERT_LOCALLY'), 'unknown_ca'],
  ['SELF_SIGNED_CERT_IN_CHAIN', coded('SELF_SIGNED_CERT_IN_CHAIN'), 'unknown_ca'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'unknown_ca'],
  ['CERT_HAS_EXPIRED as authorizationError string', 'CERT_HAS_EXPIRED', 'expired'],
  ['INVALID_CA', coded('INVALID_CA'), 'bad_svid'],
  ['ETIMEDOUT', coded('ETIMEDOUT'), 'timeout'],
  ['SVID without URI SAN', tesseraErr('TESSERA_ERR_SVID_NO_URI_SAN'), 'bad_svid'],
  ['SVID of another trust domain', tesseraErr('TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN'), 'wrong_trust_domain'],
  ['SVID with unexpected ID', tesseraErr('TESSERA_ERR_SVID_ID_MISMATCH'), 'id_mismatch'],
  ['banned SPIFFE ID', tesseraErr('TESSERA_ERR_REVOCATION_ID_BANNED'), 'revoked'],
  ['banned SVID serial', tesseraErr('TESSERA_ERR_REVOCATION_SERIAL_BANNED'), 'revoked'],
  ['certificate_revoked alert from a peer', coded('ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED'), 'revoked'],
  ['SVID chain not verifying', tesseraErr('TESSERA_ERR_SVID_BAD_SIGNATURE'), 'bad_signature'],
  ['no bundle for the trust domain', tesseraErr('TESSERA_ERR_SVID_NO_BUNDLE'), 'unknown_ca'],
  ['empty chain', tesseraErr('TESSERA_ERR_SVID_EMPTY_CHAIN'), 'no_client_cert'],
  ['SvidFailure object', { ok: false, reason: 'wrong_trust_domain', code: 'TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN' }, 'wrong_trust_domain'],
  ['SVID failure wrapped as cause', new Error('refused', { cause: tesseraErr('TESSERA_ERR_SVID_EXPIRED') }), 'expired'],
  ['message only: OpenSSL reason text', new Error('error:0A00009C:SSL routines::http request'), 'plaintext'],
  ['message only: not yet valid', new Error('certificate is not yet valid'), 'not_yet_valid'],
  ['an unrelated error', new Error('boom'), 'other'],
  ['an unrelated code', coded('ENOENT'), 'other'],
  ['an OpenSSL reason text that is not a reason', Object.assign(new Error('x'), { reason: 'http request' }), 'other'],
  ['null', null, 'other'],
  ['undefined', undefined, 'other'],
  ['a number', 42, 'other'],
];

describe('classifyTlsError table', () => {
  test.each(tableCases)('%s', (_name, input, want) => {
    expect(classifyTlsError(input)).toBe(want);
  });

  test('a self-referencing cause chain terminates', () => {
    const e = new Error('loop') as Error & { cause?: unknown };
    const f = new Error('loop2', { cause: e });
    e.cause = f;
    expect(classifyTlsError(e)).toBe('other');
  });

  test('every reason of the fixed set is produced by at least one case', () => {
    const produced = new Set([...realCases.map((c) => c[4]), ...tableCases.map((c) => c[2])]);
    expect([...produced].sort()).toEqual([...HANDSHAKE_REASONS].sort());
    expect(HANDSHAKE_REASONS.every(isHandshakeReason)).toBe(true);
    expect(isHandshakeReason('http request')).toBe(false);
  });
});
