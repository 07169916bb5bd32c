// RsaKeyVerdicts: each distinct RSA key judged once (copies, repeats and concurrent askers share one check), what is
// remembered bounded (least recently used first out), failures not remembered, non-RSA keys never judged. Counted
// through the injected judge, never timed.
import { type KeyObject, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { rsaKeyWeakness } from '../../../../common/pki/rsa-key-strength.js';
import { type RsaJudge, RsaKeyVerdicts } from '../../../../common/pki/rsa-key-verdicts.js';

let keys: KeyObject[];

/** A judge running the real rules in this thread, counting its runs (and whether each was urgent). */
function countingJudge(): { judge: RsaJudge; runs: boolean[] } {
  const runs: boolean[] = [];
  const judge: RsaJudge = async (spki, urgent) => {
    runs.push(urgent);
    return rsaKeyWeakness(createPublicKey({ key: spki, format: 'der', type: 'spki' }));
  };
  return { judge, runs };
}

beforeAll(() => {
  keys = Array.from({ length: 3 }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
});

describe('RsaKeyVerdicts', () => {
  test('a key is judged once: its copies (another KeyObject of the same key) and later asks are answered from memory', async () => {
    const { judge, runs } = countingJudge();
    const v = new RsaKeyVerdicts({ judge });
    const copy = createPublicKey({ key: keys[0]!.export({ format: 'jwk' }), format: 'jwk' });
    expect(await v.weakness(keys[0]!)).toBeNull();
    for (let i = 0; i < 10; i++) expect(await v.weakness(i % 2 ? copy : keys[0]!)).toBeNull();
    expect(runs).toHaveLength(1);
    // A weak key's verdict is remembered too: a peer serving it again costs nothing either.
    const e3 = createPublicKey({ key: { ...(keys[1]!.export({ format: 'jwk' }) as object), e: 'Aw' } as never, format: 'jwk' });
    expect(await v.weakness(e3)).toMatch(/exponent/);
    expect(await v.weakness(e3)).toMatch(/exponent/);
    expect(runs).toHaveLength(2);
  });

  test('askers of one key while it is judged share the one check; urgent is passed on', async () => {
    const { judge, runs } = countingJudge();
    const v = new RsaKeyVerdicts({ judge });
    const answers = await Promise.all([v.weakness(keys[0]!, true), v.weakness(keys[0]!), v.weakness(keys[0]!)]);
    expect(answers).toEqual([null, null, null]);
    expect(runs).toEqual([true]);
  });

  test('bounded: past maxEntries the least recently used verdict is forgotten (and judged again when asked)', async () => {
    const { judge, runs } = countingJudge();
    const v = new RsaKeyVerdicts({ judge, maxEntries: 2 });
    const [a, b, c] = keys as [KeyObject, KeyObject, KeyObject];
    await v.weakness(a);
    await v.weakness(b);
    await v.weakness(a); // a is now the most recent: b goes first
    await v.weakness(c);
    expect(runs).toHaveLength(3);
    await v.weakness(a);
    expect(runs).toHaveLength(3);
    await v.weakness(b);
    expect(runs).toHaveLength(4);
  });

  test('a failed judgement is not remembered; non-RSA keys are never judged', async () => {
    let fail = true;
    let calls = 0;
    const v = new RsaKeyVerdicts({
      judge: async () => {
        calls++;
        if (fail) throw new Error('thread gone');
        return null;
      },
    });
    await expect(v.weakness(keys[0]!)).rejects.toThrow('thread gone');
    fail = false;
    expect(await v.weakness(keys[0]!)).toBeNull();
    expect(calls).toBe(2);
    expect(await v.weakness(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey)).toBeNull();
    expect(calls).toBe(2);
  });
});
