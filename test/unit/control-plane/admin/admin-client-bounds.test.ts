// adminRequest against a real socket that answers badly (audit 24b F4, F5): a trickling answer is cut at the
// overall deadline, an oversized one at 64 MiB, a cut one and every odd error code come back coded, never as an
// uncaught error, a hang or a prototype key taken for a code.
import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { hasControlCharacters } from '../../../../common/text/control-characters.js';
import { ADMIN_ANSWER_MAX_BYTES, adminRequest } from '../../../../control-plane/src/admin/admin-client.js';
import { fakeAdminSocket, servedAdminSocket } from '../../../helpers/fake-admin-socket.js';
import { makeTempDir } from '../../../helpers/run.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const serve = (answer: (res: ServerResponse) => void) => servedAdminSocket(cleanups, answer);

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: 'ok', message: '' }),
    (e: unknown) => (isTesseraError(e) ? { code: e.code, message: e.message } : { code: 'uncoded', message: String(e) }),
  );

describe('adminRequest bounds', () => {
  // Audit 62h F6: an offline-root control plane swaps its waiting admin socket for its serving one after the first
  // install, and a command in that moment failed TESSERA_ERR_CP_UNREACHABLE against a running control plane.
  test('a socket that refuses connections for a moment (its server being swapped) is connected to again; one that keeps refusing fails within about a second', async () => {
    const tmp = await makeTempDir();
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, 'admin.sock');
    writeFileSync(path, ''); // exists, refuses (ECONNREFUSED): no server behind it yet
    const started = Date.now();
    const pending = outcome(adminRequest(tmp.dir, 'GET', '/v1/ca'));
    await new Promise((r) => setTimeout(r, 300));
    unlinkSync(path);
    const sock = await fakeAdminSocket(tmp.dir, (_req, res) => res.end('{"ok":true}'));
    cleanups.push(() => sock.close());
    expect(await pending).toEqual({ code: 'ok', message: '' });
    await sock.close();
    if (existsSync(path)) unlinkSync(path);
    writeFileSync(path, '');
    const again = Date.now();
    const refused = await outcome(adminRequest(tmp.dir, 'GET', '/v1/ca'));
    expect(refused).toEqual({ code: 'TESSERA_ERR_CP_UNREACHABLE', message: expect.stringContaining('ECONNREFUSED') });
    expect(Date.now() - again).toBeGreaterThanOrEqual(800);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 10_000);

  test('an answer trickling a byte at a time is cut at the overall deadline, not kept alive by each byte', async () => {
    const { dir } = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"token":"');
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write('a')), 50);
    });
    const started = Date.now();
    const got = await outcome(adminRequest(dir, 'POST', '/v1/tokens', {}, 600));
    expect(got.code).toBe('TESSERA_ERR_CP_UNREACHABLE');
    expect(got.message).toContain('no whole answer within 600 ms');
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);

  test('an answer over 64 MiB is refused as it arrives (chunked) or from its Content-Length', async () => {
    const chunk = Buffer.alloc(1 << 20, 0x20);
    const chunked = await serve((res) => {
      res.writeHead(200);
      let n = 0;
      const w = () => {
        while (n++ < 80) if (!res.write(chunk)) return void res.once('drain', w);
        res.end();
      };
      w();
    });
    const got = await outcome(adminRequest(chunked.dir, 'GET', '/v1/revocations'));
    expect(got).toEqual({ code: 'TESSERA_ERR_CP_ADMIN_BAD_ANSWER', message: expect.stringContaining(`larger than ${ADMIN_ANSWER_MAX_BYTES} bytes`) });
    const declared = await serve((res) => {
      res.writeHead(200, { 'content-length': String(ADMIN_ANSWER_MAX_BYTES + 1) });
      res.write('[');
    });
    expect((await outcome(adminRequest(declared.dir, 'GET', '/v1/revocations'))).code).toBe('TESSERA_ERR_CP_ADMIN_BAD_ANSWER');
  }, 20_000);

  test('a connection cut mid-body is TESSERA_ERR_CP_UNREACHABLE, not an uncoded "aborted"', async () => {
    const { dir } = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"token":"abc');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const got = await outcome(adminRequest(dir, 'POST', '/v1/tokens', {}));
    expect(got.code).toBe('TESSERA_ERR_CP_UNREACHABLE');
    expect(got.message).toContain('before the whole answer');
  });

  test.each(['__proto__', 'toString', 'constructor', 'hasOwnProperty', 'valueOf', 'TESSERA_ERR_NOT_A_CODE'])('error code %s, not an own key of the catalogue, is a bad answer', async (code) => {
    const { dir } = await serve((res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code, message: 'x' } }));
    });
    const got = await outcome(adminRequest(dir, 'POST', '/v1/revocations', {}));
    expect(got.code).toBe('TESSERA_ERR_CP_ADMIN_BAD_ANSWER');
    expect(got.message).toContain(JSON.stringify(code));
  });

  test.each([['null'], ['[]'], ['{"error":"x"}'], ['{"error":{"code":7,"message":{}}}'], ['not json']])('an error answer %s of the wrong shape is a bad answer', async (body) => {
    const { dir } = await serve((res) => {
      res.writeHead(500);
      res.end(body);
    });
    expect((await outcome(adminRequest(dir, 'GET', '/v1/ca'))).code).toBe('TESSERA_ERR_CP_ADMIN_BAD_ANSWER');
  });

  test("a catalogue code is the control plane's own refusal and is kept, with its message", async () => {
    const { dir } = await serve((res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'TESSERA_ERR_REVOCATION_INVALID', message: 'bad value' } }));
    });
    expect(await outcome(adminRequest(dir, 'POST', '/v1/revocations', {}))).toEqual({ code: 'TESSERA_ERR_REVOCATION_INVALID', message: 'bad value' });
  });

  // The next audit: the message went to the terminal raw (an ESC sequence cleared the screen and printed a forged
  // "OK" line; 60 MB of it were printed whole).
  test('an error message is printed with its control characters escaped, and bounded', async () => {
    const forged = '\u001b[2J\u001b[HOK: all bans lifted\r\u0007';
    const { dir } = await serve((res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'TESSERA_ERR_REVOCATION_INVALID', message: forged + 'x'.repeat(100_000) } }));
    });
    const got = await outcome(adminRequest(dir, 'POST', '/v1/revocations', {}));
    expect(got.code).toBe('TESSERA_ERR_REVOCATION_INVALID');
    expect(got.message.startsWith('\\x1b[2J\\x1b[HOK: all bans lifted\\x0d\\x07')).toBe(true);
    expect(got.message.length).toBeLessThan(2_100);
    expect(hasControlCharacters(got.message)).toBe(false);
  });
});
