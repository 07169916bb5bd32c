// Reads a file a user named (a CLI flag or argument, a config file, a file a config key names): every failure is a
// coded error naming the file. Read through bounded-read: only a regular file, and never more than its bound (a
// `--config /dev/zero`, a FIFO or a log of GBs grew memory without limit, or hung, before any check ran).
import { X509Certificate } from 'node:crypto';
import { open } from 'node:fs/promises';
import { MAX_CONFIG_BYTES } from '../common/config/config-size.js';
import { type ErrorCode, TesseraError } from '../common/errors.js';
import { decodePem } from '../common/pki/pem.js';
import { notUtf8 } from '../common/text/utf8-text.js';
import { FileRefused, readSmallFileBytes } from './bounded-read.js';

/** The bound of a named file that is no config: the largest identity file (a trust bundle, 4 MiB). */
export const MAX_NAMED_FILE_BYTES = 4 << 20;

/** Which file, as the user knows it: `what` is its role ("--bundle", "certificate", "config"), shown before the path. */
export interface NamedFile {
  readonly path: string;
  readonly what: string;
  /**
   * The code for a file that cannot be read at all (missing, no permission, not a regular file, over its bound);
   * default TESSERA_ERR_CLI_FILE_UNREADABLE.
   */
  readonly code?: ErrorCode;
  /** An empty file is valid content (a policy file the parser reads as no policy), not an error. */
  readonly emptyOk?: boolean;
  /** The most bytes it may hold (default MAX_NAMED_FILE_BYTES); a larger file is refused unread past the bound. */
  readonly maxBytes?: number;
  /** A pipe or a FIFO is read too, to its end or the bound (stdin: `tessera inject -f -`); else only a regular file. */
  readonly pipeOk?: boolean;
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

/** The file's bytes; missing, unreadable, empty, non-regular and oversized files are coded errors that name it. */
export async function readNamedFile(f: NamedFile): Promise<Buffer> {
  return f.pipeOk ? nonEmpty(f, await readPipe(f)) : readNamedFileSync(f);
}

/** readNamedFile for start-up paths that are synchronous (config loading). */
export function readNamedFileSync(f: NamedFile): Buffer {
  const max = f.maxBytes ?? MAX_NAMED_FILE_BYTES;
  let data: Buffer;
  try {
    data = readSmallFileBytes(f.path, max);
  } catch (e) {
    if (e instanceof FileRefused) throw fail(f, f.code ?? 'TESSERA_ERR_CLI_FILE_UNREADABLE', e.message);
    throw unreadable(f, e);
  }
  return nonEmpty(f, data);
}

/** Whatever `f.path` is (stdin may be a pipe), read asynchronously to its end or one byte past the bound. */
async function readPipe(f: NamedFile): Promise<Buffer> {
  const max = f.maxBytes ?? MAX_NAMED_FILE_BYTES;
  const chunks: Buffer[] = [];
  let n = 0;
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(f.path, 'r');
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 << 10, max + 1 - n));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      n += bytesRead;
      if (n > max) throw new FileRefused('too_large', max);
    }
  } catch (e) {
    if (e instanceof FileRefused) throw fail(f, f.code ?? 'TESSERA_ERR_CLI_FILE_UNREADABLE', e.message);
    throw unreadable(f, e);
  } finally {
    await handle?.close();
  }
  return Buffer.concat(chunks, n);
}

/**
 * A config-like file's text (a config, the static endpoints file): read as readNamedFileSync with the config bound
 * (1 MiB, counted in bytes), then refused unless it is UTF-8, with the line and column of the first byte that is not
 * (`code`, default TESSERA_ERR_CONFIG_UNREADABLE).
 */
export function readConfigText(f: NamedFile): string {
  const code = f.code ?? 'TESSERA_ERR_CONFIG_UNREADABLE';
  const bytes = readNamedFileSync({ ...f, code, maxBytes: f.maxBytes ?? MAX_CONFIG_BYTES });
  return configText(bytes, f.path, code);
}

/** `bytes` as text when they are UTF-8; else the coded error `file:line:col: not UTF-8: …`. */
export function configText(bytes: Buffer, file: string, code: ErrorCode = 'TESSERA_ERR_CONFIG_UNREADABLE'): string {
  const bad = notUtf8(bytes);
  if (bad) throw new TesseraError(code, `${file}:${bad.line}:${bad.col}: ${bad.why}`, { file, line: bad.line });
  return bytes.toString('utf8');
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
