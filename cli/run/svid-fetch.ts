// `tessera svid fetch`: one-shot attestation with a join token. The key is generated here and never sent; a CSR
// goes to the control plane (verified by its SPIFFE ID against --bundle); the answer is verified before
// svid.pem (chain, leaf first), key.pem (0600) and bundle.pem are written to --out. With --jwt, the fresh SVID
// then authenticates (mTLS) a JWT-SVID request for --audience, and the JWT alone is printed.
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { systemClock } from '../../common/clock.js';
import { addressProblem } from '../../common/config/address.js';
import { TesseraError } from '../../common/errors.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, keyMatchesPublicKey, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../common/spiffe/x509-svid.js';
import { readCertificatesFile } from '../../shared-io/read-named-file.js';
import { boolFlag, type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { trustDomainOf } from '../bundle-trust-domain.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { prepareOutDir, writeOutFile } from '../output-files.js';
import { trustDomainFlag } from '../spiffe-flags.js';

const OUT_FILES = ['key.pem', 'svid.pem', 'bundle.pem'] as const;

export async function runSvidFetch(args: ParsedArgs, io: CommandIo): Promise<number> {
  const jwt = boolFlag(args, 'jwt');
  const audience = (args.flags['audience'] as string[] | undefined) ?? [];
  const outFlag = stringFlag(args, 'out');
  const out = outFlag === undefined ? undefined : resolve(io.cwd, outFlag);
  if (!jwt && out === undefined) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--out is required (or --jwt --audience A)');
  if (jwt && audience.length === 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--jwt needs --audience');
  if (!jwt && audience.length > 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--audience is for --jwt');
  const pinnedTd = trustDomainFlag(args, 'trust-domain');
  const address = requiredString(args, 'control-plane');
  const problem = addressProblem(address);
  if (problem !== null) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--control-plane "${address}" ${problem === 'is not a host:port address' ? 'is not HOST:PORT' : problem}`);
  const bundleFile = requiredString(args, 'bundle');
  const bundleCerts = await readCertificatesFile({ path: bundleFile, what: '--bundle' });
  const td = pinnedTd ?? trustDomainOf(bundleCerts, bundleFile);
  const bootstrap = new TrustBundleSet([new TrustBundle(td, bundleCerts)]);
  // Before attesting: the join token is single-use and the SVID the answer carries has its only key here, so an --out
  // that cannot take the files must fail while nothing is spent (audit 55a F2).
  if (out !== undefined) await prepareOutDir('out', out, OUT_FILES);
  const key = generateKeyPair('ec-p256');
  const csr = await createCsr(key, {});
  // Loaded once the flags and the bundle are checked (grpc-js and the contracts): a mistake is told without them.
  const { ControlPlaneClient } = await import('../../proxy/src/identity/control-plane-client.js');
  // The call's deadline is on grpc-js's clock, Date.now (systemClock), whatever io.clock is.
  const client = new ControlPlaneClient({ address, trustDomain: td, bundles: () => bootstrap, clock: io.clock, deadlineClock: systemClock });
  try {
    const raw = await client.attest(csr, { kind: 'join_token', token: requiredString(args, 'join-token') });
    const own = raw.bundles.find((b) => b.trustDomain === td.name);
    if (!own) throw new TesseraError('TESSERA_ERR_IDENTITY_BAD_RESPONSE', `the answer carries no bundle for ${td.name}`);
    const bundle = new TrustBundle(td, own.authoritiesDer.map((d) => new X509Certificate(d)));
    const chain = raw.chainDer.map((d) => new X509Certificate(d));
    const verified = verifyX509Svid(chain, new TrustBundleSet([bundle]), { nowMs: io.clock.nowMs() });
    if (!verified.ok) throw new TesseraError('TESSERA_ERR_IDENTITY_BAD_RESPONSE', `the SVID does not verify: ${verified.code}: ${verified.message}`);
    if (!keyMatchesPublicKey(key.privateKey, chain[0]!.publicKey)) throw new TesseraError('TESSERA_ERR_IDENTITY_BAD_RESPONSE', 'the SVID is not for the key this command generated');
    const serial = chain[0]!.serialNumber.toLowerCase();
    if (out !== undefined) {
      await writeOutFile('out', join(out, 'key.pem'), privateKeyPem(key), 0o600);
      await writeOutFile('out', join(out, 'svid.pem'), chain.map((c) => encodePem('CERTIFICATE', c.raw)).join(''), 0o644);
      await writeOutFile('out', join(out, 'bundle.pem'), bundle.toPem(), 0o644);
    }
    if (jwt) {
      const svid = { id: verified.id, chain, key, bundle, notBeforeMs: chain[0]!.validFromDate.getTime(), notAfterMs: verified.notAfterMs, issuedAtMs: io.clock.nowMs(), serial };
      io.stdout(`${(await client.mintJwtSvid(svid, audience)).token}\n`);
      return EXIT_OK;
    }
    io.stdout(`${JSON.stringify({ spiffeId: verified.id.toString(), serial, notAfter: new Date(verified.notAfterMs).toISOString(), dir: outFlag })}\n`);
    return EXIT_OK;
  } finally {
    client.close();
  }
}
