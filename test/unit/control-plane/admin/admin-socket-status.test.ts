import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ErrorCode, TesseraError } from '../../../../common/errors.js';
import { compileIdPattern } from '../../../../common/spiffe/match.js';
import { AdminSocket } from '../../../../control-plane/src/admin/admin-socket.js';

// The operator socket answers an error with its catalogue HTTP status, for every code (not a hand-kept list).
const dir = mkdtempSync(join(tmpdir(), 'tessera-admin-status-'));
const path = join(dir, 'admin.sock');
const socket = new AdminSocket(path, {
  'POST /v1/throw': (body) => {
    throw new TesseraError(body.code as ErrorCode, 'detail');
  },
  'POST /v1/pattern': (body) => compileIdPattern(String(body.pattern)),
  'POST /v1/crash': () => {
    throw new Error('secret internal detail');
  },
});

function post(route: string, body: unknown): Promise<{ status: number; json: { error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req = request({ socketPath: path, method: 'POST', path: route, headers: { 'content-type': 'application/json', 'content-length': payload.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

beforeAll(() => socket.start());
afterAll(async () => {
  await socket.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('admin socket error statuses', () => {
  test.each([
    ['TESSERA_ERR_CA_UNKNOWN_AUTHORITY', 404],
    ['TESSERA_ERR_CA_AUTHORITY_ACTIVE', 409],
    ['TESSERA_ERR_CA_STATE_CORRUPT', 500],
    ['TESSERA_ERR_REVOCATION_NOT_FOUND', 404],
    ['TESSERA_ERR_REVOCATION_TOKEN_USED', 409],
    ['TESSERA_ERR_REVOCATION_ID_BANNED', 409],
    ['TESSERA_ERR_REVOCATION_SERIAL_BANNED', 409],
    ['TESSERA_ERR_BREAK_GLASS_INVALID', 400],
    ['TESSERA_ERR_CONFIG_BAD_DURATION', 400],
    ['TESSERA_ERR_ISSUANCE_RESERVED_ID', 403],
    ['TESSERA_ERR_ATTESTATION_DISABLED', 403],
  ] as [ErrorCode, number][])('%s → %d', async (code, status) => {
    const r = await post('/v1/throw', { code });
    expect(r.status).toBe(status);
    expect(r.json.error).toEqual({ code, message: 'detail' });
  });

  test('a malformed SPIFFE ID pattern is bad input (400), like every SPIFFE ID fault', async () => {
    const r = await post('/v1/pattern', { pattern: 'spiffe://example.org/a*b' });
    expect(r.json.error?.code).toBe('TESSERA_ERR_SPIFFE_ID_PATTERN');
    expect(r.status).toBe(400);
  });

  test('an error without a code is 500 and shows nothing internal', async () => {
    const r = await post('/v1/crash', {});
    expect(r.status).toBe(500);
    expect(r.json.error).toEqual({ code: 'TESSERA_ERR_ISSUANCE_INTERNAL', message: 'internal error' });
  });
});
