// What a caller refused for its client SVID is told (streams, Config/Report, MintJwtSvid alike): the code that is
// recorded — a ban, no certificate at all, an SVID that does not verify — and never the detail (toGrpcError sends
// the catalogue text only). Anything unexpected is told as an SVID that does not verify.
import { TesseraError, isTesseraError } from '../../../common/errors.js';

export function svidRefusal(e: unknown): TesseraError {
  if (isTesseraError(e) && (e.code.startsWith('TESSERA_ERR_REVOCATION_') || e.code.startsWith('TESSERA_ERR_ATTESTATION_'))) return e;
  return new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID');
}
