// SpiffeId: parsing and validation exactly per the SPIFFE ID standard; every rejection names the rule it broke.
import { TesseraError, errorMessage } from '../errors.js';
import { TrustDomain, validateTrustDomainName } from './trust-domain.js';

const SCHEME = 'spiffe://';
/** SPIFFE-ID §2.3: the longest ID that must be supported and that may be generated. */
export const MAX_SPIFFE_ID_BYTES = 2048;
const PATH_CHAR = /^[A-Za-z0-9._-]$/;

export class SpiffeId {
  readonly trustDomain: TrustDomain;
  /** "" or "/seg/seg…". */
  readonly path: string;
  readonly #text: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    this.#text = `${SCHEME}${trustDomain.name}${path}`;
  }

  static parse(text: string): SpiffeId {
    if (text === '') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_EMPTY');
    if (Buffer.byteLength(text, 'utf8') > MAX_SPIFFE_ID_BYTES) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_TOO_LONG');
    if (!text.startsWith(SCHEME)) {
      throw new TesseraError('TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME', `${errorMessage('TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME')} Got ${JSON.stringify(text.slice(0, 40))}.`);
    }
    const rest = text.slice(SCHEME.length);
    // The query and fragment markers would end the authority or path in a URI: name them precisely.
    const q = rest.indexOf('?');
    const f = rest.indexOf('#');
    if (q !== -1 && (f === -1 || q < f)) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_QUERY');
    if (f !== -1) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_FRAGMENT');
    const slash = rest.indexOf('/');
    const tdName = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    validateTrustDomainName(tdName);
    validatePath(path);
    return new SpiffeId(TrustDomain.fromValidated(tdName), path);
  }

  static tryParse(text: string): { ok: true; id: SpiffeId } | { ok: false; error: TesseraError } {
    try {
      return { ok: true, id: SpiffeId.parse(text) };
    } catch (e) {
      if (e instanceof TesseraError) return { ok: false, error: e };
      throw e;
    }
  }

  /**
   * Builds an ID from a trust domain and raw segments, by parse's rules (a name from a token or an API can be any
   * length): what parse would refuse is refused here with the same code, and each argument is exactly one segment.
   */
  static fromSegments(td: TrustDomain, ...segments: string[]): SpiffeId {
    const path = segments.map((s) => `/${s}`).join('');
    if (Buffer.byteLength(`${SCHEME}${td.name}${path}`, 'utf8') > MAX_SPIFFE_ID_BYTES) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_TOO_LONG');
    validatePath(path);
    // "a/b" would pass as two segments and let one value (a namespace, a service account) add path levels.
    const joined = segments.find((s) => s.includes('/'));
    if (joined !== undefined) {
      throw new TesseraError('TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR', `path segment "${joined.slice(0, 200)}" holds "/": one value must be one segment`);
    }
    return new SpiffeId(td, path);
  }

  /** Path segments, without the leading empty one. */
  segments(): string[] {
    return this.path === '' ? [] : this.path.slice(1).split('/');
  }

  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.equals(td);
  }

  equals(other: SpiffeId): boolean {
    return this.#text === other.#text;
  }

  toString(): string {
    return this.#text;
  }

  toJSON(): string {
    return this.#text;
  }
}

export function validatePath(path: string): void {
  if (path === '') return;
  // path always starts with "/" here; split gives a leading "".
  const segments = path.split('/').slice(1);
  for (const seg of segments) {
    if (seg === '') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT');
    if (seg === '.' || seg === '..') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_DOT_SEGMENT');
    for (const ch of seg) {
      if (!PATH_CHAR.test(ch)) {
        throw new TesseraError(
          'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR',
          `path segment "${seg}" holds ${JSON.stringify(ch)}: only a-z, A-Z, 0-9, ".", "-", "_" are allowed`,
        );
      }
    }
  }
}
