// `tessera ca sign-intermediate`: the root holder's side of an offline root, for a machine with no control plane
// (and no openssl recipe at hand): signs an intermediate CSR from `tessera ca intermediate-csr` with the root's key,
// as the control plane will check it (basicConstraints CA pathlen 0, keyUsage keyCertSign+cRLSign, both critical;
// the URI SAN spiffe://<trust domain> the CSR asks for; never outliving the root). Nothing is sent anywhere.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { issueCertificate } from '../../common/pki/cert-builder.js';
import { parseCsr } from '../../common/pki/csr-parse.js';
import { keyMatchesPublicKey, keyPairFromPem } from '../../common/pki/keys.js';
import { decodePem, encodePem } from '../../common/pki/pem.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { checkOfflineRoot } from '../../control-plane/src/ca/offline-intermediate.js';
import { beyondOwner } from '../../shared-io/key-file-exposure.js';
import { certificatesOf, readNamedFile } from '../../shared-io/read-named-file.js';
import { requiredString, stringFlag, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { checkOutFile, writeOutFile } from '../output-files.js';
import { DEFAULT_TTL, TTL_RANGE } from '../commands/ca-sign-intermediate.js';
import { durationValue } from '../number-flags.js';
import { trustDomainFlag } from '../spiffe-flags.js';

/** Valid from a minute before it is made: the clocks of the two machines differ. */
const BACKDATE_MS = 60_000;

function usage(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CLI_USAGE', message);
}

export async function runCaSignIntermediate(args: ParsedArgs, io: CommandIo): Promise<number> {
  const want = trustDomainFlag(args, 'trust-domain');
  const file = (flag: string) => ({ path: resolve(io.cwd, requiredString(args, flag)), what: `--${flag}` });
  const ttlMs = durationValue('ttl', stringFlag(args, 'ttl') ?? DEFAULT_TTL, TTL_RANGE);
  const out = resolve(io.cwd, requiredString(args, 'out'));
  await checkOutFile('out', out);
  const rootFile = file('root-cert');
  const roots = certificatesOf(rootFile, await readNamedFile(rootFile));
  if (roots.length !== 1) throw usage(`--root-cert holds ${roots.length} certificates; give the one root`);
  const root = roots[0]!;
  const keyFile = file('root-key');
  let rootKey: ReturnType<typeof keyPairFromPem>;
  const keyPem = await readNamedFile(keyFile);
  // The root's key is the whole trust domain, on the holder's own machine (no Secret mount to read it through a
  // group): owner-only, as the control plane holds its JWT signing keys.
  const exposed = beyondOwner((await stat(keyFile.path)).mode);
  if (exposed) throw new TesseraError('TESSERA_ERR_CA_KEY_EXPOSED', `--root-key ${keyFile.path}: ${exposed} lets other users than its owner at it; a root key must be 0600 or 0400 (chmod 600 it)`, { file: keyFile.path });
  try {
    rootKey = keyPairFromPem(keyPem);
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    throw usage(`--root-key ${keyFile.path} is not a private key: ${(e as Error).message}`);
  }
  if (!keyMatchesPublicKey(rootKey.privateKey, root.publicKey)) throw usage(`--root-key ${keyFile.path} is not the key of --root-cert ${rootFile.path}`);
  const csrBlock = decodePem((await readNamedFile(file('csr'))).toString('utf8')).find((b) => b.label === 'CERTIFICATE REQUEST');
  if (!csrBlock) throw usage('--csr holds no CERTIFICATE REQUEST block');
  const csr = await parseCsr(csrBlock.der);
  const td = csr.uriSans.length === 1 && csr.sans.length === 1 && /^spiffe:\/\/[^/]+$/.test(csr.uriSans[0]!) ? TrustDomain.tryParse(csr.uriSans[0]!) : null;
  if (!td) throw usage(`the CSR asks for ${csr.sans.join(', ') || 'no SAN'}; an intermediate request names exactly spiffe://<trust domain>`);
  if (want !== undefined && !want.equals(td)) throw usage(`the CSR is for trust domain ${td.name}, not ${want.name}`);
  // Nothing is signed that install-intermediate would refuse for the root's sake (pathlen 0, another trust
  // domain, a weak key, an extendedKeyUsage without the TLS purposes…): the same check, here.
  checkOfflineRoot(root, td);
  const now = io.clock.nowMs();
  const cert = await issueCertificate({
    subject: `CN=Tessera intermediate ${td.name} ${now}, O=Tessera`,
    publicKey: csr.publicKey,
    issuer: root,
    signer: rootKey,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(Math.min(now + ttlMs, root.validToDate.getTime())),
    basicConstraints: { ca: true, pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
    uriSans: [td.idString()],
  });
  await writeOutFile('out', out, encodePem('CERTIFICATE', cert.raw), 0o644);
  io.stdout(`wrote ${out}: intermediate for ${td.idString()}, serial ${cert.serialNumber.toLowerCase()}, not after ${cert.validToDate.toISOString()}\n`);
  return EXIT_OK;
}
