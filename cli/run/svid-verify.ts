// `tessera svid verify`: judge a certificate chain as an X.509-SVID against a bundle file, at a chosen time; with
// --jwt, a JWT-SVID against a SPIFFE bundle (svid-verify-jwt.ts).
import type { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../common/errors.js';
import { claimedTrustDomains } from '../../common/spiffe/named-trust-domains.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { leafSpiffeId, verifyX509Svid } from '../../common/spiffe/x509-svid.js';
import { readCertificatesFile } from '../../shared-io/read-named-file.js';
import { boolFlag, requiredString, stringFlag, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_FAILURE, EXIT_OK } from '../command.js';
import { timeFlag } from '../number-flags.js';
import { spiffeIdFlag, trustDomainFlag } from '../spiffe-flags.js';
import { verifyJwtSvid } from './svid-verify-jwt.js';

/**
 * The bundle file holds CAs without saying which trust domain each serves. A CA that carries SPIFFE URI SANs serves
 * the domains they name and no other (one naming only malformed names serves none); a CA with none is trusted for
 * the domain of the SVID being judged (like `openssl verify -CAfile`), unless --trust-domain pins the file to one.
 */
function bundlesFor(bundleCerts: X509Certificate[], leafTd: string | undefined, pinned: string | undefined): TrustBundleSet {
  const byTd = new Map<string, X509Certificate[]>();
  for (const ca of bundleCerts) {
    const claimed = claimedTrustDomains(ca);
    const tds = pinned ? [pinned] : claimed.length > 0 ? claimed.filter((td) => TrustDomain.tryParse(td) !== null) : leafTd ? [leafTd] : [];
    for (const td of tds) byTd.set(td, [...(byTd.get(td) ?? []), ca]);
  }
  return new TrustBundleSet([...byTd].map(([td, certs]) => new TrustBundle(TrustDomain.parse(td), certs)));
}

export async function runSvidVerify(args: ParsedArgs, io: CommandIo): Promise<number> {
  const expectedId = spiffeIdFlag(args, 'id');
  const pinnedTd = trustDomainFlag(args, 'trust-domain');
  const nowMs = timeFlag(args, 'at') ?? io.clock.nowMs();
  if (boolFlag(args, 'jwt')) return verifyJwtSvid(args, io, nowMs, { ...(expectedId ? { expectedId } : {}), ...(pinnedTd ? { pinnedTd } : {}) });
  if (stringFlag(args, 'audience') !== undefined) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--audience is for --jwt');
  const pinned = pinnedTd?.name;
  const bundleCerts = await readCertificatesFile({ path: requiredString(args, 'bundle'), what: '--bundle' });
  const chain = await readCertificatesFile({ path: args.positionals[0]!, what: 'certificate' });
  const leafId = chain[0] ? leafSpiffeId(chain[0]) : undefined;
  const leafTd = leafId?.ok ? leafId.id.trustDomain.name : leafId?.claimedId?.trustDomain.name;
  const result = verifyX509Svid(chain, bundlesFor(bundleCerts, leafTd, pinned), { nowMs, ...(expectedId ? { expectedId } : {}) });
  const out = result.ok
    ? { valid: true, spiffeId: result.id.toString(), reason: null, code: null, notAfter: new Date(result.notAfterMs).toISOString() }
    : {
        valid: false,
        spiffeId: result.claimedId?.toString() ?? null,
        reason: result.reason,
        code: result.code,
        message: result.message,
        notAfter: chain[0] ? chain[0].validToDate.toISOString() : null,
      };
  io.stdout(`${JSON.stringify(out)}\n`);
  return result.ok ? EXIT_OK : EXIT_FAILURE;
}
