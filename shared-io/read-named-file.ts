// Reads a file a user named (a CLI flag or argument, a config file): every failure is a coded error naming the file.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type ErrorCode, TesseraError } from '../common/errors.js';
import { decodePem } from '../common/pki/pem.js';

/** Which file, as the user knows it: `what` is its role ("--bundle", "certificate", "config"), shown before the path. */
export interface NamedFile {
  readonly path: string;
  readonly what: string;
  /** The code for a file that cannot be read at all (missing, no permission, a directory). */
  readonly code?: 'TESSERA_ERR_CLI_FILE_UNREADABLE' | 'TESSERA_ERR_CONFIG_UNREADABLE';
  /** An empty file is valid content (a policy file the parser reads as no policy), not an error. */
  readonly emptyOk?: boolean;
}

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a parent of it is not a directory',
  ELOOP: 'too many symbolic links',
  EROFS: 'on a read-only file system',
  ENOSPC: 'no space left on the device',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this host',
};

function fail(f: NamedFile, code: ErrorCode, why: string): TesseraError {
  return new TesseraError(code, `${f.what} ${f.path}: ${why}`, { file: f.path });
}

/** Why a file operation failed, in words, with the errno code kept for searching: "no such file (ENOENT)". */
export function errnoReason(e: unknown, fallback = 'cannot be read'): string {
  const errno = (e as NodeJS.ErrnoException).code;
  return errno ? `${REASONS[errno] ?? fallback} (${errno})` : (e as Error).message;
}

function unreadable(f: NamedFile, e: unknown): TesseraError {
  return fail(f, f.code ?? 'TESSERA_ERR_CLI_FILE_UNREADABLE', errnoReason(e));
}

function nonEmpty(f: NamedFile, data: Buffer): Buffer {
  if (!f.emptyOk && data.toString('latin1').trim() === '') throw fail(f, 'TESSERA_ERR_FILE_EMPTY', 'the file is empty');
  return data;
}

/** The file's bytes; missing, unreadable and empty files are coded errors that name it. */
export async function readNamedFile(f: NamedFile): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(f.path);
  } catch (e) {
    throw unreadable(f, e);
  }
  return nonEmpty(f, data);
}

/** readNamedFile for start-up paths that are synchronous (config loading). */
export function readNamedFileSync(f: NamedFile): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(f.path);
  } catch (e) {
    throw unreadable(f, e);
  }
  return nonEmpty(f, data);
}

/** The DER of every PEM block labelled `label`; a file that is not PEM or holds only other blocks is named as such. */
export function pemBlocksOf(f: NamedFile, data: Buffer, label: string | RegExp): Buffer[] {
  const text = data.toString('latin1');
  if (!text.includes('-----BEGIN ')) throw fail(f, 'TESSERA_ERR_PEM_MALFORMED', `not PEM: no "-----BEGIN" line (expected ${String(label)})`);
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(text);
  } catch (e) {
    throw fail(f, 'TESSERA_ERR_PEM_MALFORMED', (e as Error).message);
  }
  if (blocks.length === 0) throw fail(f, 'TESSERA_ERR_PEM_MALFORMED', 'no complete PEM block (a BEGIN line without its END?)');
  const wanted = blocks.filter((b) => (typeof label === 'string' ? b.label === label : label.test(b.label)));
  if (wanted.length === 0) {
    const found = [...new Set(blocks.map((b) => b.label))].join(', ');
    throw fail(f, 'TESSERA_ERR_PEM_WRONG_TYPE', `holds ${found}, expected ${typeof label === 'string' ? label : 'a private key'}`);
  }
  return wanted.map((b) => b.der);
}

/** Every certificate in a PEM file (a chain or a bundle), parsed; raw DER (one certificate) is accepted too. */
export function certificatesOf(f: NamedFile, data: Buffer): X509Certificate[] {
  if (!data.toString('latin1').includes('-----BEGIN ')) {
    try {
      return [new X509Certificate(data)];
    } catch {
      throw fail(f, 'TESSERA_ERR_PEM_MALFORMED', 'neither PEM (no "-----BEGIN" line) nor a DER certificate');
    }
  }
  return pemBlocksOf(f, data, 'CERTIFICATE').map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (e) {
      throw fail(f, 'TESSERA_ERR_PEM_MALFORMED', `certificate ${i + 1} does not parse: ${(e as Error).message}`);
    }
  });
}

export async function readCertificatesFile(f: NamedFile): Promise<X509Certificate[]> {
  return certificatesOf(f, await readNamedFile(f));
}

/** A private key file: PEM with a "... PRIVATE KEY" block. */
export async function readPrivateKeyFile(f: NamedFile): Promise<Buffer> {
  const data = await readNamedFile(f);
  pemBlocksOf(f, data, /PRIVATE KEY$/);
  return data;
}
