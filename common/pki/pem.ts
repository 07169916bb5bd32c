// PEM encoding and decoding of DER blocks (certificates, keys, CSRs).
import { TesseraError } from '../errors.js';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

export function decodePem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new TesseraError('TESSERA_ERR_PEM_MALFORMED', `bad base64 in ${m[1]} block`);
    out.push({ label: m[1]!, der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** All CERTIFICATE blocks, in order. Accepts raw DER (one certificate) when the input is not PEM. */
export function decodeCertificates(input: string | Uint8Array): Buffer[] {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  if (!text.includes('-----BEGIN')) {
    if (typeof input === 'string') throw new TesseraError('TESSERA_ERR_PEM_MALFORMED', 'no PEM block found');
    return [Buffer.from(input)];
  }
  return decodePem(text).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
