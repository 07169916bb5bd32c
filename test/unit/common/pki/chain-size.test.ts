// The bound on a served chain: distinct certificates past 64 KiB of DER, or any certificate twice, are a fault.
import { randomBytes } from 'node:crypto';
import { expect, test } from 'vitest';
import { chainSizeFault, MAX_CHAIN_DER_BYTES } from '../../../../common/pki/chain-size.js';

test('distinct certificates up to the bound pass; one byte more, or a certificate twice, is named', () => {
  const part = (n: number) => randomBytes(n);
  expect(chainSizeFault([part(2_000), part(1_500)])).toBeNull();
  expect(chainSizeFault([part(MAX_CHAIN_DER_BYTES - 1_000), part(1_000)])).toBeNull();
  expect(chainSizeFault([part(MAX_CHAIN_DER_BYTES - 1_000), part(1_001)])).toMatch(/over the 65536/);
  const a = part(1_000);
  expect(chainSizeFault([a, part(500), Buffer.from(a)])).toBe('holds certificate #3 twice');
});
