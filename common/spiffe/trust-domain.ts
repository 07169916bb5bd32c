// TrustDomain: the validated authority part of a SPIFFE ID (lower-case a-z 0-9 . - _).
import { TesseraError } from '../errors.js';

const TD_CHAR = /^[a-z0-9._-]$/;
/** A trust domain name is meant to be a DNS name the organisation holds: at most 255 bytes, as DNS allows. */
const TD_MAX_BYTES = 255;

export class TrustDomain {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Accepts "example.org" or "spiffe://example.org". */
  static parse(text: string): TrustDomain {
    const name = text.startsWith('spiffe://') ? text.slice('spiffe://'.length) : text;
    validateTrustDomainName(name);
    return new TrustDomain(name);
  }

  /** Null instead of an error (for schema checks). */
  static tryParse(text: string): TrustDomain | null {
    try {
      return TrustDomain.parse(text);
    } catch (e) {
      if (e instanceof TesseraError) return null;
      throw e;
    }
  }

  /** For values already validated by the SPIFFE ID parser. */
  static fromValidated(name: string): TrustDomain {
    return new TrustDomain(name);
  }

  /** The trust domain's own ID, "spiffe://<name>". */
  idString(): string {
    return `spiffe://${this.name}`;
  }

  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  toString(): string {
    return this.name;
  }

  toJSON(): string {
    return this.name;
  }
}

export function validateTrustDomainName(name: string): void {
  if (name === '') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_NO_TRUST_DOMAIN');
  // Every allowed character is one byte: a longer string is refused before it is walked.
  if (name.length > TD_MAX_BYTES) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG', `a trust domain name of ${name.length} characters (at most ${TD_MAX_BYTES})`);
  for (const ch of name) {
    if (TD_CHAR.test(ch)) continue;
    if (ch === '@') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_USERINFO');
    if (ch === ':') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_PORT');
    throw new TesseraError(
      'TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR',
      `trust domain "${name}" holds ${JSON.stringify(ch)}: only a-z, 0-9, ".", "-", "_" are allowed (lower case)`,
    );
  }
}
