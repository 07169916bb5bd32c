// Which of an authority's intermediates signs: the one whose chain ends last (the newest of those that end together).
// A managed rotation's newest ends last by construction; an offline root's renewal installed with a shorter life than
// the one before it took over as the newest, and at its end issuance stopped (and a restart failed) while the longer
// one was still held (audit 62h F2, 62k F2). The signer, `tessera ca status`, the expiry gauges and the half-life
// warning all read this one.
import type { CertWithKey, LoadedAuthority } from './authority.js';
import { chainValidity } from './chain-end.js';

export function signingIntermediate(a: LoadedAuthority): CertWithKey {
  let best = a.intermediates.at(-1)!;
  let bestEnd = chainValidity(best.cert, a.root.cert).notAfterMs;
  for (const i of a.intermediates) {
    const end = chainValidity(i.cert, a.root.cert).notAfterMs;
    if (end > bestEnd) [best, bestEnd] = [i, end];
  }
  return best;
}
