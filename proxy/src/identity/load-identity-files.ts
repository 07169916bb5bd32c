// Reads an identity from files (identity.files: SVID chain, private key, trust bundle) into an IdentityInput.
// Every failure names the file; a private key that others (or a group this process is not in) can read is refused,
// like ssh does. Each file is read through one non-blocking descriptor, only if it is a regular file and no larger
// than a bound: a FIFO renamed into place froze the whole proxy (SIGTERM included), a link to /dev/zero grew it
// until it aborted.
import { X509Certificate } from 'node:crypto';
import type { Stats } from 'node:fs';
import { FileRefused, readSmallFile } from '../../../shared-io/bounded-read.js';
import { type ProcessIdentity, keyExposure, processIdentity } from '../../../shared-io/key-file-exposure.js';
import { TesseraError } from '../../../common/errors.js';
import { type KeyPair, keyPairFromPem } from '../../../common/pki/keys.js';
import { chainSizeFault } from '../../../common/pki/chain-size.js';
import { decodePem } from '../../../common/pki/pem.js';
import { TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import { leafSpiffeId } from '../../../common/spiffe/x509-svid.js';
import type { IdentityInput } from './identity-snapshot.js';

export interface IdentityFiles {
  /** PEM chain, leaf first. */
  readonly certFile: string;
  /** PEM private key (PKCS#8, SEC1 or PKCS#1), owner-only. */
  readonly keyFile: string;
  /** PEM authorities of the leaf's trust domain. */
  readonly bundleFile: string;
}

export const FILES_SOURCE = 'files';

type Role = 'certificate chain' | 'private key' | 'trust bundle';

/** The most an identity file may hold: a chain or a key is a few KiB; a bundle may list many authorities. */
const MAX_BYTES: Readonly<Record<Role, number>> = { 'certificate chain': 1 << 20, 'private key': 1 << 20, 'trust bundle': 4 << 20 };

function unreadable(file: string, role: Role, e: unknown): TesseraError {
  const cause = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new TesseraError('TESSERA_ERR_IDENTITY_FILE_UNREADABLE', `cannot read the ${role} file ${file}: ${cause}`, { file, role }, { cause: e });
}

function malformed(file: string, role: Role, what: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_ERR_IDENTITY_FILE_MALFORMED', `the ${role} file ${file} ${what}`, { file, role }, cause ? { cause } : undefined);
}

/**
 * Throws TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS when others, or a group this process is not in, may read or write
 * the key. Group access for the process's own groups is how a Kubernetes Secret volume is read (root:<fsGroup> 0440).
 */
export function checkKeyFileMode(file: string, st: Pick<Stats, 'mode' | 'gid'>, me: ProcessIdentity = processIdentity()): void {
  const exposure = keyExposure(st, me);
  if (exposure === null) return;
  const octal = (st.mode & 0o777).toString(8).padStart(4, '0');
  throw new TesseraError(
    'TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS',
    `the private key file ${file} has mode ${octal}: ${exposure} (chmod 600 it; a Kubernetes Secret volume needs the pod's fsGroup, which makes it root:<fsGroup> 0440)`,
    { file, mode: octal },
  );
}

/** The PEM blocks of a file; a BEGIN without its END (a file caught half-written) is malformed, not "fewer blocks". */
function pemBlocks(text: string, file: string, role: Role) {
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(text);
  } catch (e) {
    throw malformed(file, role, `is not valid PEM: ${(e as Error).message}`, e);
  }
  const begins = text.match(/-----BEGIN [A-Z0-9 ]+-----/g)?.length ?? 0;
  if (begins !== blocks.length) throw malformed(file, role, 'holds a truncated PEM block (still being written?)');
  return blocks;
}

function readCertificates(text: string, file: string, role: Role): X509Certificate[] {
  const blocks = pemBlocks(text, file, role).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) throw malformed(file, role, 'holds no CERTIFICATE block');
  // The chain is served in every handshake; a bundle is not, and may be large.
  const fault = role === 'certificate chain' ? chainSizeFault(blocks.map((b) => b.der)) : null;
  if (fault) throw malformed(file, role, fault);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b.der);
    } catch (e) {
      throw malformed(file, role, `holds a certificate (#${i + 1}) that cannot be parsed: ${(e as Error).message}`, e);
    }
  });
}

/**
 * The text of one identity file, read through one descriptor: a regular file of at most MAX_BYTES[role]. `check`
 * judges the descriptor's mode first (the key's), so the mode checked is the mode of the bytes read.
 */
function readFile(file: string, role: Role, check?: (st: Stats) => void): string {
  try {
    return readSmallFile(file, MAX_BYTES[role], check);
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    if (e instanceof FileRefused && e.why === 'too_large') throw malformed(file, role, `is ${e.message}`, e);
    throw unreadable(file, role, e);
  }
}

function readKey(file: string): KeyPair {
  const role: Role = 'private key';
  const text = readFile(file, role, (st) => {
    if (process.platform !== 'win32') checkKeyFileMode(file, st);
  });
  const blocks = pemBlocks(text, file, role).filter((b) => b.label.endsWith('PRIVATE KEY'));
  if (blocks.length !== 1) throw malformed(file, role, `must hold exactly one PRIVATE KEY block (found ${blocks.length})`);
  try {
    return keyPairFromPem(text);
  } catch (e) {
    if (e instanceof TesseraError) throw new TesseraError(e.code, `the private key file ${file}: ${e.message}`, { file, role }, { cause: e });
    throw malformed(file, role, `holds a key that cannot be loaded: ${(e as Error).message}`, e);
  }
}

/**
 * Loads the three files. Checks what each file alone can tell (readable, well-formed PEM, key permissions, the
 * leaf carries a SPIFFE ID); whether they belong together (key ↔ leaf, chain ↔ bundle, validity) is checked by
 * buildIdentitySnapshot when the input is installed.
 */
export function loadIdentityFiles(files: IdentityFiles): IdentityInput {
  const chain = readCertificates(readFile(files.certFile, 'certificate chain'), files.certFile, 'certificate chain');
  const key = readKey(files.keyFile);
  const bundleText = readFile(files.bundleFile, 'trust bundle');
  const leafId = leafSpiffeId(chain[0]!);
  if (!leafId.ok) {
    throw new TesseraError('TESSERA_ERR_IDENTITY_INVALID', `the certificate chain file ${files.certFile} does not start with an X.509-SVID: ${leafId.message}`, {
      file: files.certFile,
      cause: leafId.code,
    });
  }
  const td = leafId.id.trustDomain;
  const authorities = readCertificates(bundleText, files.bundleFile, 'trust bundle');
  let bundle: TrustBundle;
  try {
    bundle = new TrustBundle(td, authorities);
  } catch (e) {
    if (!(e instanceof TesseraError)) throw e;
    throw malformed(files.bundleFile, 'trust bundle', `is not a bundle for "${td.name}": ${e.message}`, e);
  }
  return { chain, key, bundles: new TrustBundleSet([bundle]), source: FILES_SOURCE };
}
