// The JWT signing keys on disk: created once and reloaded (same kid), rotated with overlap (a token of the old key
// still validates until the overlap ends), files 0600, a widened key file refused, the bundle document's sequence
// growing only when its keys change.
import { chmodSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { signJwtSvid, validateJwtSvid } from '../../../../common/spiffe/jwt-svid.js';
import { parseSpiffeBundle } from '../../../../common/spiffe/spiffe-bundle.js';
import { jwtKeyFiles } from '../../../../control-plane/src/ca/jwt-key-files.js';
import { JwtKeys } from '../../../../control-plane/src/ca/jwt-keys.js';
import { writeSpiffeBundleFile } from '../../../../control-plane/src/ca/spiffe-bundle-file.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const tmp = tempDirPerTest();
const DAY = 24 * 3_600_000;
const OVERLAP = 3_630_000;
const open = (time: FakeTime) => JwtKeys.open({ backend: jwtKeyFiles(join(tmp.dir, 'jwt')), clock: time, rotateEveryMs: DAY, overlapMs: OVERLAP });

function tokenOf(keys: JwtKeys, time: FakeTime): string {
  const k = keys.active();
  return signJwtSvid({ privateKey: k.privateKey, keyId: k.keyId, spiffeId: 'spiffe://example.org/w', audience: ['a'], issuedAtMs: time.nowMs(), expiresAtMs: time.nowMs() + 3_600_000 });
}
const bundlesOf = (keys: JwtKeys) => new Map([['example.org', new Map(keys.published().map((k) => [k.keyId, k.publicKey]))]]);

describe('JwtKeys', () => {
  test('the first open creates one 0600 key; reopening loads the same one', async () => {
    const time = new FakeTime();
    const first = await open(time);
    expect(first.events.map((e) => e.event)).toEqual(['jwt_key.created']);
    const kid = first.keys.active().keyId;
    expect(statSync(join(tmp.dir, 'jwt', `${kid}.key.pem`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(tmp.dir, 'jwt', 'keys.json')).mode & 0o777).toBe(0o600);
    const again = await open(time);
    expect(again.events).toEqual([]);
    expect(again.keys.active().keyId).toBe(kid);
  });

  test('rotation keeps the retired key published for the overlap, then removes it (and its file)', async () => {
    const time = new FakeTime();
    const { keys } = await open(time);
    const oldKid = keys.active().keyId;
    time.set(time.nowMs() + DAY - 1);
    expect(await keys.maintain()).toEqual([]);
    const oldToken = tokenOf(keys, time);
    time.set(time.nowMs() + 1);
    expect((await keys.maintain()).map((e) => e.event)).toEqual(['jwt_key.retired', 'jwt_key.created']);
    expect(keys.active().keyId).not.toBe(oldKid);
    expect(keys.published().map((k) => k.keyId)).toEqual([oldKid, keys.active().keyId]);
    // A token the old key signed just before the rotation still validates against what is published.
    expect(validateJwtSvid(oldToken, 'a', bundlesOf(keys), time.nowMs()).keyId).toBe(oldKid);
    // A restart in the overlap keeps both.
    expect((await open(time)).keys.published().map((k) => k.keyId)).toEqual([oldKid, keys.active().keyId]);
    time.set(time.nowMs() + OVERLAP);
    expect(await keys.maintain()).toEqual([{ event: 'jwt_key.removed', kid: oldKid }]);
    expect(keys.published().map((k) => k.keyId)).toEqual([keys.active().keyId]);
    expect(readdirSync(join(tmp.dir, 'jwt')).sort()).toEqual([`${keys.active().keyId}.key.pem`, 'keys.json'].sort());
    expect(() => validateJwtSvid(oldToken, 'a', bundlesOf(keys), time.nowMs() - 3_000_000)).toThrow(/not in the JWT bundle/);
  });

  test('a key file readable by others is refused at open', async () => {
    const time = new FakeTime();
    const kid = (await open(time)).keys.active().keyId;
    chmodSync(join(tmp.dir, 'jwt', `${kid}.key.pem`), 0o644);
    try {
      await open(time);
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_CA_KEY_EXPOSED')).toBe(true);
    }
  });

  test('a key list naming a key whose file holds another key is corrupt state', async () => {
    const time = new FakeTime();
    const kid = (await open(time)).keys.active().keyId;
    const list = JSON.parse(readFileSync(join(tmp.dir, 'jwt', 'keys.json'), 'utf8')) as { keys: { kid: string }[] };
    list.keys[0]!.kid = `${kid}x`;
    writeFileSync(join(tmp.dir, 'jwt', 'keys.json'), JSON.stringify(list));
    await expect(open(time)).rejects.toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CA_STATE_CORRUPT' }));
  });
});

describe('bundle.spiffe.json', () => {
  test('written with the keys; the sequence grows only when the keys change', async () => {
    const time = new FakeTime();
    const { keys } = await open(time);
    const seqs = new Map<string, number>();
    const file = { path: join(tmp.dir, 'bundle.spiffe.json'), sequenceFor: async (d: string) => seqs.get(d) ?? seqs.set(d, seqs.size + 1).get(d)! };
    expect(await writeSpiffeBundleFile(file, [], keys.published())).toBe(1);
    expect(await writeSpiffeBundleFile(file, [], keys.published())).toBe(1);
    await keys.rotate();
    expect(await writeSpiffeBundleFile(file, [], keys.published())).toBe(2);
    const parsed = parseSpiffeBundle(readFileSync(file.path, 'utf8'));
    expect(parsed.sequence).toBe(2n);
    expect([...parsed.jwtAuthorities.keys()]).toEqual(keys.published().map((k) => k.keyId));
    expect(statSync(file.path).mode & 0o777).toBe(0o644);
  });
});
