// Which of an authority's intermediates signs at `nowMs`: the newest whose chain has not ended, else the newest. An
// offline root's renewal installed with a shorter life than the one before it signs until it ends; then the older
// one, still live, signs again: as the newest it was taken after its end too, issuance stopped there and a restart
// failed while the longer one was held (audit 62h F2, 62k F2). Not the one that ends last: on a read-only Secret with
// a root key the Secret's stored intermediate outlives the ones a replica mints and must never sign. The signer,
// `tessera ca status`, the expiry gauges and the half-life warning all read this one.
import type { CertWithKey, LoadedAuthority } from './authority.js';
import { chainValidity } from './chain-end.js';

export function signingIntermediate(a: LoadedAuthority, nowMs: number): CertWithKey {
  for (let n = a.intermediates.length - 1; n >= 0; n--) {
    const i = a.intermediates[n]!;
    if (chainValidity(i.cert, a.root.cert).notAfterMs > nowMs) return i;
  }
  return a.intermediates.at(-1)!;
}
