// SPIFFE IDs, ID patterns and trust domains on the command line (audit 51a F7): every command that takes one refuses a
// malformed one the same way, before it reads a file or asks a control plane: exit 2, TESSERA_ERR_CLI_USAGE naming the
// flag and the value, with the specific TESSERA_ERR_SPIFFE_ID_* code. Before, token create left the code out,
// svid verify --id exited 1, revoke and break-glass went to the control plane (exit 1, its own code), and patterns
// called "?" and "#" BAD_PATH_CHAR. And `svid verify`: every refusal of either form carries its code (audit 51a F5:
// a JWT-SVID's id_mismatch had `code: null`). In process, with the real commands.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { CommandIo } from '../../../cli/command.js';
import { COMMANDS } from '../../../cli/commands/index.js';
import { runCli } from '../../../cli/run-cli.js';
import { systemClock } from '../../../common/clock.js';
import { realTimers } from '../../../shared-io/timers.js';
import { signJwtSvid } from '../../../common/spiffe/jwt-svid.js';
import { spiffeBundleDocument } from '../../../common/spiffe/spiffe-bundle.js';
import { TestCa } from '../../helpers/test-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-spiffe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const NONE = join(dir, 'missing'); // never created: a command that read it first would fail on the file instead

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: dir, clock: systemClock, timers: realTimers, stopSignal: new Promise(() => undefined) };
  const code = await runCli(argv, COMMANDS, io);
  return { code, out: out.join(''), err: err.join('') };
}

const ID = 'spiffe://example.org/ns/default/sa/web';
type Kind = 'a SPIFFE ID' | 'a SPIFFE ID pattern' | 'a trust domain';

/** Each SPIFFE-typed flag of each command, with an otherwise complete command line (`V`: the value under test). */
const ENTRIES: { name: string; flag: string; kind: Kind; argv: string[] }[] = [
  { name: 'token create', flag: 'spiffe-id', kind: 'a SPIFFE ID', argv: ['token', 'create', '--data-dir', NONE, '--spiffe-id', 'V'] },
  { name: 'policy check', flag: 'from', kind: 'a SPIFFE ID', argv: ['policy', 'check', '--policies', NONE, '--from', 'V', '--to', ID] },
  { name: 'policy check', flag: 'to', kind: 'a SPIFFE ID', argv: ['policy', 'check', '--policies', NONE, '--from', ID, '--to', 'V'] },
  { name: 'svid verify', flag: 'id', kind: 'a SPIFFE ID', argv: ['svid', 'verify', '--bundle', NONE, '--id', 'V', NONE] },
  { name: 'svid verify', flag: 'id', kind: 'a SPIFFE ID', argv: ['svid', 'verify', '--jwt', '--audience', 'a', '--bundle', NONE, '--id', 'V', 'x.y.z'] },
  { name: 'svid verify', flag: 'trust-domain', kind: 'a trust domain', argv: ['svid', 'verify', '--bundle', NONE, '--trust-domain', 'V', NONE] },
  { name: 'svid verify', flag: 'trust-domain', kind: 'a trust domain', argv: ['svid', 'verify', '--jwt', '--audience', 'a', '--bundle', NONE, '--trust-domain', 'V', 'x.y.z'] },
  {
    name: 'svid fetch',
    flag: 'trust-domain',
    kind: 'a trust domain',
    argv: ['svid', 'fetch', '--control-plane', '127.0.0.1:1', '--bundle', NONE, '--join-token', 't', '--out', NONE, '--trust-domain', 'V'],
  },
  {
    name: 'ca sign-intermediate',
    flag: 'trust-domain',
    kind: 'a trust domain',
    argv: ['ca', 'sign-intermediate', '--root-cert', NONE, '--root-key', NONE, '--csr', NONE, '--out', NONE, '--trust-domain', 'V'],
  },
  { name: 'revoke id', flag: 'spiffe-id', kind: 'a SPIFFE ID', argv: ['revoke', 'id', '--data-dir', NONE, '--spiffe-id', 'V'] },
  { name: 'revoke lift', flag: 'spiffe-id', kind: 'a SPIFFE ID', argv: ['revoke', 'lift', '--data-dir', NONE, '--spiffe-id', 'V'] },
  {
    name: 'policy break-glass',
    flag: 'to',
    kind: 'a SPIFFE ID pattern',
    argv: ['policy', 'break-glass', '--data-dir', NONE, '--to', 'V', '--from', 'spiffe://example.org/**', '--for', '1m', '--reason', 'r'],
  },
  {
    name: 'policy break-glass',
    flag: 'from',
    kind: 'a SPIFFE ID pattern',
    argv: ['policy', 'break-glass', '--data-dir', NONE, '--to', ID, '--from', 'spiffe://example.org/**', '--from', 'V', '--for', '1m', '--reason', 'r'],
  },
];

/** Malformed values and the code each must be named with; a pattern gets the ID's code for an ID's fault. */
const IDS: [string, string][] = [
  ['', 'EMPTY'],
  ['spiffe://example.org/a?b', 'QUERY'],
  ['spiffe://example.org/a#b', 'FRAGMENT'],
  ['spiffe://example.org//a', 'EMPTY_SEGMENT'],
  ['spiffe://example.org/a/..', 'DOT_SEGMENT'],
  ['spiffe://Example.org/a', 'BAD_TRUST_DOMAIN_CHAR'],
  ['spiffe://example.org:8443/a', 'PORT'],
  ['http://example.org/a', 'WRONG_SCHEME'],
  ['spiffe://example.org/a\nb', 'BAD_PATH_CHAR'],
  [`spiffe://example.org/${'a'.repeat(2040)}`, 'TOO_LONG'],
];
const BAD: Record<Kind, [string, string][]> = {
  'a SPIFFE ID': IDS,
  'a SPIFFE ID pattern': [...IDS, ['spiffe://example.org/a*', 'PATTERN'], ['spiffe://example.org/**/a', 'PATTERN'], ['spiffe://example.org/*?x', 'QUERY']],
  'a trust domain': [
    ['', 'NO_TRUST_DOMAIN'],
    ['Example.org', 'BAD_TRUST_DOMAIN_CHAR'],
    ['example.org:8443', 'PORT'],
    ['user@example.org', 'USERINFO'],
    ['example.org/a', 'BAD_TRUST_DOMAIN_CHAR'],
  ],
};

describe('SPIFFE-typed flags', () => {
  test('every flag of every command that takes a SPIFFE ID or a trust domain is in the table', () => {
    // ID-valued flags that are no SPIFFE ID: a CA authority's id, a demo replica's name, a join token's id.
    const notSpiffe = new Set(['ca activate --authority', 'ca retire --authority', 'demo-app --instance', 'revoke token --token-id']);
    const found = COMMANDS.flatMap((c) =>
      Object.entries(c.flags)
        .filter(([, f]) => f.value === 'ID' || f.value === 'TD')
        .map(([flag]) => `${c.path.join(' ')} --${flag}`),
    ).filter((f) => !notSpiffe.has(f));
    expect(new Set(ENTRIES.map((e) => `${e.name} --${e.flag}`))).toEqual(new Set(found));
  });

  for (const e of ENTRIES) {
    test(`${e.argv.slice(0, e.argv.indexOf('--jwt') >= 0 ? 3 : 2).join(' ')} --${e.flag}: a usage error naming the flag and the SPIFFE code`, async () => {
      for (const [value, code] of BAD[e.kind]) {
        const r = await run(e.argv.map((a) => (a === 'V' ? value : a)));
        const first = r.err.split('\n')[0]!;
        expect({ exit: r.code, out: r.out }, `${e.name} --${e.flag} ${JSON.stringify(value)}: ${first}`).toEqual({ exit: 2, out: '' });
        // An empty value is refused as a missing one by the parser, for every flag, before its type is looked at.
        if (value === '') expect(first).toBe(`tessera ${e.name}: TESSERA_ERR_CLI_USAGE: --${e.flag} needs a value (got an empty one)`);
        else expect(first, JSON.stringify(value)).toMatch(new RegExp(`^tessera ${e.name}: TESSERA_ERR_CLI_USAGE: --${e.flag} ".*" is not ${e.kind} \\(TESSERA_ERR_SPIFFE_ID_${code}: `));
        // The value is quoted with its control characters escaped and long ones cut: one line, a readable length.
        expect(first.length, JSON.stringify(value)).toBeLessThan(600);
      }
    });
  }
});

describe('svid verify: every refusal of either form carries its code', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Date.now();
  const jwt = (o: { sub?: string; aud?: string; privateKey?: typeof key.privateKey; keyId?: string; expiresAtMs?: number } = {}) =>
    signJwtSvid({ privateKey: o.privateKey ?? key.privateKey, keyId: o.keyId ?? 'k1', spiffeId: o.sub ?? ID, audience: [o.aud ?? 'queue'], issuedAtMs: now - 1000, expiresAtMs: o.expiresAtMs ?? now + 300_000 });
  const bundle = join(dir, 'bundle.spiffe.json');
  writeFileSync(bundle, JSON.stringify(spiffeBundleDocument({ x509Authorities: [], jwtAuthorities: [{ keyId: 'k1', publicKey: key.publicKey }], sequence: 1, refreshHintSeconds: 300 })));
  const verifyJwt = async (token: string, ...extra: string[]) => {
    const r = await run(['svid', 'verify', '--jwt', '--bundle', bundle, '--trust-domain', 'example.org', '--audience', 'queue', ...extra, token]);
    return { code: r.code, out: JSON.parse(r.out) as Record<string, unknown> };
  };

  test('a JWT-SVID of another ID than --id: id_mismatch with TESSERA_ERR_SVID_ID_MISMATCH, as the X.509 form says it', async () => {
    const other = 'spiffe://example.org/ns/default/sa/api';
    expect(await verifyJwt(jwt(), '--id', other)).toEqual({
      code: 1,
      out: { valid: false, spiffeId: ID, reason: 'id_mismatch', code: 'TESSERA_ERR_SVID_ID_MISMATCH', message: `The SVID is valid but its SPIFFE ID is not the one expected. (got "${ID}", want "${other}")` },
    });
    expect(await verifyJwt(jwt(), '--id', ID)).toMatchObject({ code: 0, out: { valid: true, spiffeId: ID, reason: null, code: null } });

    const ca = await TestCa.create();
    const svid = await ca.mintSvid(ID);
    writeFileSync(join(dir, 'ca.pem'), ca.bundlePem());
    writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
    const x509 = await run(['svid', 'verify', '--bundle', join(dir, 'ca.pem'), '--id', other, join(dir, 'svid.pem')]);
    expect(x509.code).toBe(1);
    expect(JSON.parse(x509.out)).toMatchObject({ valid: false, reason: 'id_mismatch', code: 'TESSERA_ERR_SVID_ID_MISMATCH', message: `The SVID is valid but its SPIFFE ID is not the one expected. (got "${ID}", want "${other}")` });
  });

  test('each JWT refusal has a code of the catalogue', async () => {
    const refusals = [
      await verifyJwt(jwt({ aud: 'elsewhere' })),
      await verifyJwt(jwt({ expiresAtMs: now - 120_000 })),
      await verifyJwt(jwt({ privateKey: other.privateKey, keyId: 'k2' })),
      await verifyJwt(jwt({ privateKey: other.privateKey })),
      await verifyJwt('not-a-token'),
      await verifyJwt(jwt(), '--id', 'spiffe://example.org/x'),
    ];
    expect(refusals.map((r) => [r.code, r.out['reason'], r.out['code']])).toEqual([
      [1, 'wrong_audience', 'TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE'],
      [1, 'expired', 'TESSERA_ERR_JWT_SVID_EXPIRED'],
      [1, 'unknown_key', 'TESSERA_ERR_JWT_SVID_UNKNOWN_KEY'],
      [1, 'bad_signature', 'TESSERA_ERR_JWT_SVID_BAD_SIGNATURE'],
      [1, 'malformed', 'TESSERA_ERR_JWT_SVID_MALFORMED'],
      [1, 'id_mismatch', 'TESSERA_ERR_SVID_ID_MISMATCH'],
    ]);
  });
});
