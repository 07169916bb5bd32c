// A real software TPM for tests: Debian's `swtpm` on two adjacent loopback ports (commands on P, control on P+1,
// as the tpm2-tss "swtpm" TCTI expects), driven by tpm2-tools. Provisions an endorsement key and attestation keys
// the way docs/tpm-attestation.md tells a user to, and certifies them with a CA made by the openssl CLI.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { freePort } from './free-port.js';
import { run } from './run.js';

export const EK_HANDLE = '0x81010001';

export interface SoftwareTpm {
  /** TPM2TOOLS_TCTI for this TPM. */
  readonly tcti: string;
  /** Runs a tpm2-tools command against it; throws with its stderr when it fails. */
  tool(cmd: string, args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Two adjacent free ports (bounded tries: another process may take one meanwhile). */
async function portPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (p < 65535 && (await portFree(p + 1))) return p;
  }
  throw new Error('no two adjacent free loopback ports');
}

export async function startSwtpm(dir: string): Promise<SoftwareTpm> {
  const state = join(dir, 'swtpm-state');
  await mkdir(state, { recursive: true });
  const supervisor = new ProcessSupervisor({ graceMs: 2_000 });
  const port = await portPair();
  await supervisor.start({
    name: 'swtpm',
    command: 'swtpm',
    args: ['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--tpmstate', `dir=${state}`, '--flags', 'not-need-init,startup-clear'],
    ready: { port },
    readyTimeoutMs: 10_000,
  });
  const tcti = `swtpm:host=127.0.0.1,port=${port}`;
  const tool = async (cmd: string, args: readonly string[]) => {
    const r = await run(cmd, args, { cwd: dir, env: { ...process.env, TPM2TOOLS_TCTI: tcti } });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  return { tcti, tool, stop: () => supervisor.stopAll() };
}

/**
 * The node side of docs/tpm-attestation.md: the endorsement key (persisted at EK_HANDLE) once, then an attestation
 * key under it persisted at `handle`, and its public area (ak.tpm.pub) for the CA. Without a resource manager every
 * transient object must be flushed, or the TPM runs out of slots. `scheme` and `hash` are the AK's own signing
 * scheme (tpm2_createak -s, -g): by default ECDSA or RSASSA with SHA-256, as the docs make it.
 */
export async function provisionAk(
  tpm: SoftwareTpm,
  dir: string,
  opts: { handle: string; alg: 'ecc' | 'ecc384' | 'rsa'; ek?: boolean; scheme?: 'ecdsa' | 'rsassa' | 'rsapss'; hash?: 'sha1' | 'sha256' | 'sha384' },
): Promise<{ readonly tpmPublic: string; readonly ekPublic: string }> {
  const flush = () => tpm.tool('tpm2_flushcontext', ['-t']);
  const ekPublic = join(dir, 'ek.pub');
  if (opts.ek !== false) {
    await tpm.tool('tpm2_createek', ['-c', EK_HANDLE, '-G', 'ecc', '-u', ekPublic]);
    await flush();
  }
  const name = opts.handle.replace(/^0x/, '');
  const ctx = join(dir, `ak-${name}.ctx`);
  const scheme = opts.scheme ?? (opts.alg === 'rsa' ? 'rsassa' : 'ecdsa');
  await tpm.tool('tpm2_createak', ['-C', EK_HANDLE, '-c', ctx, '-G', opts.alg, '-g', opts.hash ?? 'sha256', '-s', scheme]);
  await flush();
  await tpm.tool('tpm2_flushcontext', ['-s']);
  await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', ctx, opts.handle]);
  await flush();
  const tpmPublic = join(dir, `ak-${name}.tpm.pub`);
  await tpm.tool('tpm2_readpublic', ['-c', opts.handle, '-o', tpmPublic]);
  return { tpmPublic, ekPublic };
}

/**
 * The CA side of docs/tpm-attestation.md before it certifies: the AK's public area must be a restricted,
 * TPM-bound signing key, and the TPM holding the endorsement key must prove it holds the AK too (a credential
 * made offline for the AK's name, activated on the node). Returns the AK public key (PEM) to certify.
 */
export async function checkAkLikeCa(tpm: SoftwareTpm, dir: string, ak: { readonly handle: string; readonly tpmPublic: string; readonly ekPublic: string }): Promise<string> {
  const shown = await run('tpm2_print', ['-t', 'TPM2B_PUBLIC', ak.tpmPublic]);
  const attributes = /attributes:\s*\n\s*value:\s*(\S+)/.exec(shown.stdout)?.[1]?.split('|') ?? [];
  for (const a of ['fixedtpm', 'fixedparent', 'restricted', 'sign']) if (!attributes.includes(a)) throw new Error(`AK lacks ${a}: ${attributes.join('|')}`);
  // The TPM name of the AK: nameAlg (sha256) || SHA-256(TPMT_PUBLIC), the public area without its size prefix.
  const area = (await readFile(ak.tpmPublic)).subarray(2);
  const name = `000b${createHash('sha256').update(area).digest('hex')}`;
  const secret = randomBytes(32);
  const secretFile = join(dir, 'secret.bin');
  const credential = join(dir, 'cred.bin');
  await writeFile(secretFile, secret);
  const made = await run('tpm2_makecredential', ['-T', 'none', '-u', ak.ekPublic, '-s', secretFile, '-n', name, '-o', credential]);
  if (made.code !== 0) throw new Error(`tpm2_makecredential: ${made.stderr}`);
  const session = join(dir, 'session.ctx');
  const out = join(dir, 'secret.out');
  await tpm.tool('tpm2_startauthsession', ['--policy-session', '-S', session]);
  await tpm.tool('tpm2_policysecret', ['-S', session, '-c', 'e']);
  await tpm.tool('tpm2_activatecredential', ['-c', ak.handle, '-C', EK_HANDLE, '-i', credential, '-o', out, '-P', `session:${session}`]);
  await tpm.tool('tpm2_flushcontext', [session]);
  if (!(await readFile(out)).equals(secret)) throw new Error('the node did not recover the credential secret');
  const pem = await run('tpm2_print', ['-t', 'TPM2B_PUBLIC', '-f', 'pem', ak.tpmPublic]);
  if (pem.code !== 0) throw new Error(`tpm2_print: ${pem.stderr}`);
  return pem.stdout;
}

/**
 * An IEEE 802.1AR DevID-style key: an ordinary TPM signing key (fixedtpm|fixedparent|sign, NOT restricted) under a
 * storage primary, persisted at `handle`, as a vendor makes an IDevID. It may sign any digest (tpm2_sign), so also a
 * TPMS_ATTEST its holder wrote. Returns its public key (PEM) for a CA.
 */
export async function provisionDevId(tpm: SoftwareTpm, dir: string, handle: string): Promise<string> {
  const flush = () => tpm.tool('tpm2_flushcontext', ['-t']);
  const name = handle.replace(/^0x/, '');
  const [primary, pub, priv, ctx, pem] = ['primary.ctx', 'pub', 'priv', 'ctx', 'pub.pem'].map((x) => join(dir, `devid-${name}.${x}`)) as [string, string, string, string, string];
  await tpm.tool('tpm2_createprimary', ['-C', 'o', '-G', 'ecc', '-c', primary]);
  await tpm.tool('tpm2_create', ['-C', primary, '-G', 'ecc', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-u', pub, '-r', priv]);
  await flush();
  await tpm.tool('tpm2_load', ['-C', primary, '-u', pub, '-r', priv, '-c', ctx]);
  await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', ctx, handle]);
  await flush();
  await tpm.tool('tpm2_readpublic', ['-c', handle, '-f', 'pem', '-o', pem]);
  return readFile(pem, 'utf8');
}

/** Extends one PCR of the sha256 bank with a SHA-256 digest (tpm2_pcrextend). */
export async function extendPcr(tpm: SoftwareTpm, pcr: number, digestHex: string): Promise<void> {
  await tpm.tool('tpm2_pcrextend', [`${pcr}:sha256=${digestHex}`]);
}

/** Reads sha256 PCR values: index → lower-case hex. */
export async function readPcrs(tpm: SoftwareTpm, pcrs: readonly number[]): Promise<Map<number, string>> {
  const out = await tpm.tool('tpm2_pcrread', [`sha256:${pcrs.join(',')}`]);
  const values = new Map<number, string>();
  for (const m of out.matchAll(/^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/gm)) values.set(Number(m[1]), m[2]!.toLowerCase());
  return values;
}

export interface OpensslCa {
  readonly certFile: string;
  readonly keyFile: string;
  readonly pem: string;
}

/** A self-signed P-256 CA made by the openssl CLI (as docs/tpm-attestation.md does it). */
export async function opensslCa(dir: string, name: string): Promise<OpensslCa> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${name}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  if (r.code !== 0) throw new Error(`openssl req: ${r.stderr}`);
  return { certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

/** tcg-kp-AIKCertificate, the extendedKeyUsage docs/tpm-attestation.md's certify step gives an AK. */
export const AIK_EKU = '2.23.133.8.3';

/**
 * Certifies a TPM public key (PEM) with `ca`: `openssl x509 -req -force_pubkey`, subject CN=`cn`. Returns the PEM.
 * `extKeyUsage`: the documented AK purpose by default; null for none (an AK certified the way the docs said before
 * the purpose was asked, or a DevID's certificate), or other purposes.
 */
export async function certifyAk(dir: string, ca: OpensslCa, akPubPem: string, cn: string, out: string, extKeyUsage: string | null = AIK_EKU): Promise<string> {
  const pubFile = join(dir, `${out}.pub.pem`);
  const csr = join(dir, `${out}.csr`);
  const ext = join(dir, `${out}.ext`);
  const certFile = join(dir, `${out}.pem`);
  await writeFile(pubFile, akPubPem);
  await writeFile(ext, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n${extKeyUsage ? `extendedKeyUsage=${extKeyUsage}\n` : ''}`);
  // openssl 3.0 has no `x509 -new`: a CSR signed by any key carries the subject, -force_pubkey puts the AK's key in.
  const steps: string[][] = [
    ['req', '-new', '-key', ca.keyFile, '-subj', `/CN=${cn}`, '-out', csr],
    ['x509', '-req', '-in', csr, '-force_pubkey', pubFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(Date.now()), '-days', '1', '-extfile', ext, '-out', certFile],
  ];
  for (const args of steps) {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  }
  return readFile(certFile, 'utf8');
}
