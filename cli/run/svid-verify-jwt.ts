// `tessera svid verify --jwt`: judge a JWT-SVID against a SPIFFE bundle file (bundle.spiffe.json, a JWKS) for an
// audience, with the rules the Workload API's ValidateJWTSVID applies. Prints {valid, spiffeId, reason, ...}.
import { errorMessage, isTesseraError, TesseraError } from '../../common/errors.js';
import { decodeJwt, jwtRefusalReason, validateJwtSvid } from '../../common/spiffe/jwt-svid.js';
import { parseSpiffeBundle, type SpiffeBundle } from '../../common/spiffe/spiffe-bundle.js';
import type { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { readNamedFile } from '../../shared-io/read-named-file.js';
import { boolFlag, type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { trustDomainOf } from '../bundle-trust-domain.js';
import { type CommandIo, EXIT_FAILURE, EXIT_OK } from '../command.js';

/** The claimed subject of a token that did not validate (for the report only; never trusted). */
function claimedSubject(token: string): string | null {
  try {
    const sub = decodeJwt(token).claims['sub'];
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
}

/**
 * The --bundle of --jwt, parsed; a refusal names the file and, for one that is no SPIFFE bundle at all, which file is
 * wanted: the PEM bundle that the X.509 form takes is the likely mistake (it was only "not JSON", unnamed).
 */
function jwtBundle(text: string, file: string): SpiffeBundle {
  try {
    return parseSpiffeBundle(text);
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    const pem = /-----BEGIN [A-Z0-9 ]+-----/.test(text) ? '; this file is PEM, the bundle svid verify takes without --jwt' : '';
    const hint = hasKeysArray(text) ? '' : `: --jwt reads the SPIFFE bundle (JSON, the control plane's <dataDir>/bundle.spiffe.json)${pem}`;
    throw new TesseraError(e.code, `--bundle ${file}: ${e.message}${hint}`, { ...e.details, file });
  }
}

/** A JSON object with a "keys" list: a SPIFFE bundle, however faulty its entries (their fault is named as it is). */
function hasKeysArray(text: string): boolean {
  try {
    const doc: unknown = JSON.parse(text);
    return typeof doc === 'object' && doc !== null && Array.isArray((doc as Record<string, unknown>)['keys']);
  } catch {
    return false;
  }
}

/** `expectedId` (--id) and `pinnedTd` (--trust-domain) come checked from the command (spiffe-flags.ts). */
export async function verifyJwtSvid(args: ParsedArgs, io: CommandIo, nowMs: number, o: { readonly expectedId?: SpiffeId; readonly pinnedTd?: TrustDomain } = {}): Promise<number> {
  const audience = stringFlag(args, 'audience');
  if (audience === undefined || audience === '') throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--jwt needs --audience');
  const file = requiredString(args, 'bundle');
  const bundle = jwtBundle((await readNamedFile({ path: file, what: '--bundle' })).toString('utf8'), file);
  // The document does not name its trust domain: the X.509 authorities do (Tessera's roots carry spiffe://<td>).
  const td = o.pinnedTd ?? trustDomainOf(bundle.x509Authorities, file);
  // As given, not trimmed: the Workload API judges the string it is sent, and so does this (one verdict for both).
  const token = args.positionals[0]!;
  const expected = o.expectedId;
  let out: Record<string, unknown>;
  try {
    // As ValidateJWTSVID judges its own trust domain's tokens: Tessera signs a low S only, so a high-S token is the
    // second spelling of one (refused), unless the issuer is another (a SPIRE server signs either: --any-s).
    const lowS = boolFlag(args, 'any-s') ? new Set<string>() : new Set([td.name]);
    const v = validateJwtSvid(token, audience, new Map([[td.name, bundle.jwtAuthorities]]), nowMs, undefined, lowS);
    if (expected !== undefined && !expected.equals(v.spiffeId)) {
      // The X.509 form's code and wording: one outcome, one code, whichever kind of SVID was judged.
      const code = 'TESSERA_ERR_SVID_ID_MISMATCH';
      out = { valid: false, spiffeId: v.spiffeId.toString(), reason: 'id_mismatch', code, message: `${errorMessage(code)} (got "${v.spiffeId}", want "${expected}")` };
    } else {
      out = { valid: true, spiffeId: v.spiffeId.toString(), reason: null, code: null, keyId: v.keyId, expiresAt: new Date(v.expiresAtMs).toISOString() };
    }
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    out = { valid: false, spiffeId: claimedSubject(token), reason: jwtRefusalReason(e), code: e.code, message: e.message };
  }
  io.stdout(`${JSON.stringify(out)}\n`);
  return out['valid'] ? EXIT_OK : EXIT_FAILURE;
}
