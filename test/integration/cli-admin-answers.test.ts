// The built `tessera` CLI against a fake admin.sock that answers badly or not at all (audit 24b F4, F5), run as
// a real child process: wrong-shape answers and odd error codes exit 1 with a coded line (never a TypeError,
// "[object Object]" with exit 0, or a stack trace), and the first SIGTERM/SIGINT ends a one-shot command stuck on
// a silent socket at once, coded, with exit 143/130.
import { readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { servedAdminSocket } from '../helpers/fake-admin-socket.js';
import { startTestProcess } from '../helpers/ready-process.js';
import { TESSERA_BIN, tessera } from '../helpers/run.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const serve = (answer: (res: ServerResponse) => void) => servedAdminSocket(cleanups, answer);

const answering = (status: number, body: unknown) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const ID = 'spiffe://example.org/ns/a/sa/b';
const CODED = /^tessera [a-z -]+: TESSERA_ERR_CP_ADMIN_BAD_ANSWER: [^\n]+\n$/;

describe('operator commands and a bad admin.sock', () => {
  test.each([
    ['token create', ['token', 'create', '--spiffe-id', ID], { token: { a: 1 } }],
    ['token create', ['token', 'create', '--spiffe-id', ID], { tokenId: 'x' }],
    ['revoke list', ['revoke', 'list'], [{ kind: 'spiffe_id', value: ID }]],
    ['revoke list', ['revoke', 'list'], { bans: [] }],
    // A value a terminal would act on (clear the screen, forge a row): refused, not printed.
    ['revoke list', ['revoke', 'list'], { bans: [{ kind: 'spiffe_id', value: '\u001b[2Jspiffe://example.org/x\r\n2026-01-01 spiffe_id spiffe://example.org/fake', reason: 'r', createdBy: 'x', createdAt: 'y' }] }],
    ['revoke id', ['revoke', 'id', '--spiffe-id', ID], { value: ID }],
    ['revoke token', ['revoke', 'token', '--token-id', 'abc'], null],
    ['revoke lift', ['revoke', 'lift', '--serial', 'ab'], { kind: 'serial', value: 'ab', reason: '', createdBy: 'x', createdAt: 'y', renewalsStillBanned: 'ab' }],
    ['certs list', ['certs', 'list'], [{ serial: 'ab' }]],
    ['ca status', ['ca', 'status'], { trustDomain: 'example.org', signingAuthority: 'a1', authorities: [{ id: 'a1' }], removed: [] }],
    ['ca prepare', ['ca', 'prepare'], { prepared: 'a2' }],
    ['policy break-glass', ['policy', 'break-glass', '--to', ID, '--from', ID, '--for', '1h', '--reason', 'r'], { id: 'g', to: ID, from: ID, expiresAt: 'z' }],
  ])('%s: answer of the wrong shape #%#, exit 1 and TESSERA_ERR_CP_ADMIN_BAD_ANSWER', async (_name, argv, body) => {
    const { dir } = await serve(answering(200, body));
    const r = await tessera([...argv, '--data-dir', dir]);
    expect(r.stderr).toMatch(CODED);
    expect(r).toMatchObject({ code: 1, stdout: '' });
  });

  test.each(['__proto__', 'toString', 'constructor'])('revoke id: error code %s is not taken for a catalogue code', async (code) => {
    const { dir } = await serve(answering(400, { error: { code, message: 'x' } }));
    const r = await tessera(['revoke', 'id', '--spiffe-id', ID, '--data-dir', dir]);
    expect(r.stderr).toMatch(CODED);
    expect(r.code).toBe(1);
  });

  // An outside audit: `ca intermediate-csr --out` wrote whatever text came (60 MB), in place, so a signal mid-write
  // left half a file. Only one PEM CSR is written, and whole (a temporary name, then a rename).
  test('ca intermediate-csr --out: an answer that is not one PEM CSR is refused and nothing is written', async () => {
    const { dir } = await serve(answering(200, { csrPem: 'x'.repeat(4096), requestedAt: 'z', newKey: false }));
    const out = join(dir, 'out.csr');
    const r = await tessera(['ca', 'intermediate-csr', '--out', out, '--data-dir', dir]);
    expect(r.stderr).toMatch(CODED);
    expect(r.code).toBe(1);
    expect(readdirSync(dir).filter((n) => n.startsWith('out.csr'))).toEqual([]);
    const pem = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';
    const good = await serve(answering(200, { csrPem: pem, requestedAt: 'z', newKey: false }));
    const wrote = await tessera(['ca', 'intermediate-csr', '--out', join(good.dir, 'out.csr'), '--data-dir', good.dir]);
    expect(wrote.code, wrote.stderr).toBe(0);
    expect(readFileSync(join(good.dir, 'out.csr'), 'utf8')).toBe(pem);
  });

  test('a well-formed answer still prints as before', async () => {
    const { dir } = await serve(answering(200, { token: 'tok-123', tokenId: 'i', spiffeId: ID, expiresAt: 'z' }));
    expect(await tessera(['token', 'create', '--spiffe-id', ID, '--data-dir', dir])).toEqual({ code: 0, stdout: 'tok-123\n', stderr: '' });
  });
});

describe('the first signal ends a one-shot command', () => {
  test.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s to `token create` waiting on a silent admin.sock: exit %i at once, TESSERA_ERR_CLI_INTERRUPTED', async (signal, exitCode) => {
    const { dir, sock } = await serve(() => undefined);
    const child = await startTestProcess({ name: 'tessera token create', command: process.execPath, args: [TESSERA_BIN, 'token', 'create', '--spiffe-id', ID, '--data-dir', dir] });
    cleanups.push(async () => void (await child.stop({ graceMs: 1_000, signal: 'SIGKILL' })));
    await sock.firstRequest;
    const sent = Date.now();
    child.kill(signal);
    expect((await child.exited).code).toBe(exitCode);
    expect(Date.now() - sent).toBeLessThan(5_000);
    expect(child.stderr()).toBe(`tessera token create: TESSERA_ERR_CLI_INTERRUPTED: stopped by ${signal} before it finished\n`);
  }, 20_000);
});
