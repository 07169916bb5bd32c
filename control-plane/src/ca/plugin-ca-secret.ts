// A read-only CA directory in the plug-in CA shape (Istio's `cacerts` Secret): root-cert.pem (a root whose key
// is held elsewhere), ca-cert.pem and ca-key.pem (the intermediate it signed, and that intermediate's key);
// cert-chain.pem, if there, is not read. There is no ca-state.json: the state is derived from the files (one
// active authority with an offline root, named by the root's fingerprint), after the same checks an installed
// intermediate passes — so a wrong Secret stops the start with the code `tessera ca install-intermediate` gives.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { isTesseraError, TesseraError } from '../../../common/errors.js';
import { keyPairFromPem } from '../../../common/pki/keys.js';
import { readCertFields } from '../../../common/spiffe/x509-fields.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { type CaStateFile, offlineAuthorityId, serialOf } from './authority.js';
import { corrupt } from './authority-material.js';
import { checkSignedIntermediate } from './offline-intermediate.js';

export const PLUGIN_CA_FILES = { root: 'root-cert.pem', cert: 'ca-cert.pem', key: 'ca-key.pem' } as const;

/** Whether `dir` holds the plug-in CA files (checked only where ca-state.json is missing). */
export function hasPluginCaFiles(dir: string): boolean {
  return Object.values(PLUGIN_CA_FILES).every((name) => existsSync(join(dir, name)));
}

/** The trust domain the intermediate names: its one URI SAN, which must be a bare trust-domain ID. */
function trustDomainOf(certPem: Buffer, file: string): TrustDomain {
  let uris: readonly string[];
  try {
    uris = readCertFields(new X509Certificate(certPem).raw).uriSans;
  } catch (e) {
    throw corrupt(`${file} is not a certificate: ${(e as Error).message}`, e, file);
  }
  const td = uris.length === 1 && /^spiffe:\/\/[^/]+$/.test(uris[0]!) ? TrustDomain.tryParse(uris[0]!) : null;
  if (!td) throw new TesseraError('TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', `${file}: the intermediate's URI SAN is ${uris.length ? uris.join(', ') : 'missing'}; it must be exactly spiffe://<trust domain>`, { file });
  return td;
}

/** How the store reads the Secret's files: a key only after its mode was checked. */
export interface PluginCaReader {
  read(name: string): Buffer;
  readKey(name: string): Buffer;
}

/**
 * The state a plug-in CA Secret stands for; throws the install check's code, naming the directory. `expected`:
 * the trust domain it must be for (else the one the intermediate names, which the CA then compares).
 */
export function pluginCaState(dir: string, files: PluginCaReader, nowMs: number, expected?: TrustDomain): CaStateFile {
  const certFile = join(dir, PLUGIN_CA_FILES.cert);
  const keyFile = join(dir, PLUGIN_CA_FILES.key);
  const certPem = files.read(PLUGIN_CA_FILES.cert);
  const td = expected ?? trustDomainOf(certPem, certFile);
  let key: ReturnType<typeof keyPairFromPem>;
  try {
    key = keyPairFromPem(files.readKey(PLUGIN_CA_FILES.key));
  } catch (e) {
    if (isTesseraError(e)) throw e;
    throw corrupt(`${keyFile} is not a private key: ${(e as Error).message}`, e, keyFile);
  }
  // Leaves are signed ECDSA with SHA-256 (leaf-signer.ts).
  if (key.algorithm !== 'ec-p256') throw new TesseraError('TESSERA_ERR_PKI_UNSUPPORTED_KEY', `${keyFile}: the intermediate key is ${key.algorithm}; it must be ECDSA P-256`, { file: keyFile });
  let checked: ReturnType<typeof checkSignedIntermediate>;
  try {
    checked = checkSignedIntermediate({ intermediatePem: certPem, rootPem: files.read(PLUGIN_CA_FILES.root), key, trustDomain: td, nowMs });
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    const what = e.code === 'TESSERA_ERR_CA_INTERMEDIATE_KEY_MISMATCH' ? `${keyFile} does not match ${certFile}` : `${dir} (${Object.values(PLUGIN_CA_FILES).join(', ')})`;
    throw new TesseraError(e.code, `${what}: ${e.message}`, { ...e.details, file: dir });
  }
  const { intermediate, root } = checked;
  const id = offlineAuthorityId(root);
  const since = intermediate.validFromDate.getTime();
  return {
    version: 1,
    trustDomain: td.name,
    authorities: [
      {
        id,
        state: 'active',
        createdAtMs: since,
        activatedAtMs: since,
        rootCertFile: PLUGIN_CA_FILES.root,
        rootNotAfterMs: root.validToDate.getTime(),
        intermediates: [{ serial: serialOf(intermediate), certFile: PLUGIN_CA_FILES.cert, keyFile: PLUGIN_CA_FILES.key, notAfterMs: intermediate.validToDate.getTime() }],
      },
    ],
    removed: [],
  };
}
