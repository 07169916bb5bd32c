// Which chain signs the control plane's own SVID (audit 55b F1): the oldest retired authority whose chain is valid now
// and for a whole SVID lifetime more, else the active one. Snapshots built of plain values: the rule alone.
import { describe, expect, test } from 'vitest';
import type { SigningAuthority } from '../../../../control-plane/src/ca/ca-manager.js';
import { selfSigner } from '../../../../control-plane/src/issuance/self-signer.js';

const NOW = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const chain = (authorityId: string, notBeforeMs: number, notAfterMs: number) => ({ authorityId, notBeforeMs, notAfterMs, endsWith: 'intermediate' }) as unknown as SigningAuthority;
const active = chain('act', NOW - HOUR, NOW + 100 * HOUR);

describe('selfSigner', () => {
  test('no retired authority: the active one', () => {
    expect(selfSigner({ signer: active, retiredSigners: [] }, NOW, HOUR).authorityId).toBe('act');
  });

  test('the oldest retired authority whose chain outlasts a lifetime, skipping those that cannot', () => {
    const oldest = chain('r1', NOW - 9 * HOUR, NOW + 2 * HOUR);
    const next = chain('r2', NOW - 5 * HOUR, NOW + 50 * HOUR);
    expect(selfSigner({ signer: active, retiredSigners: [oldest, next] }, NOW, HOUR).authorityId).toBe('r1');
    // r1's chain ends within one lifetime: r2.
    expect(selfSigner({ signer: active, retiredSigners: [oldest, next] }, NOW + HOUR + 1, HOUR).authorityId).toBe('r2');
    // Exactly one lifetime left still gives a whole SVID.
    expect(selfSigner({ signer: active, retiredSigners: [oldest] }, NOW + HOUR, HOUR).authorityId).toBe('r1');
  });

  test('a retired chain expired, or not valid yet, leaves the active one', () => {
    expect(selfSigner({ signer: active, retiredSigners: [chain('gone', NOW - 9 * HOUR, NOW - 1)] }, NOW, HOUR).authorityId).toBe('act');
    expect(selfSigner({ signer: active, retiredSigners: [chain('later', NOW + 1, NOW + 9 * HOUR)] }, NOW, HOUR).authorityId).toBe('act');
  });
});
