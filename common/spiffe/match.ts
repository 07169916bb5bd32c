// Segment-wildcard matching shared by SPIFFE ID patterns and HTTP path patterns:
// "*" is exactly one segment, a final "**" is one or more segments; nothing else is special.
import { TesseraError, errorMessage } from '../errors.js';
import { MAX_SPIFFE_ID_BYTES, type SpiffeId, validatePath } from './spiffe-id.js';
import { validateTrustDomainName } from './trust-domain.js';

type Segment = { kind: 'literal'; value: string } | { kind: 'one' } | { kind: 'rest' };

function compileSegments(raw: string[], where: string): Segment[] {
  return raw.map((seg, i) => {
    if (seg === '*') return { kind: 'one' } as const;
    if (seg === '**') {
      if (i !== raw.length - 1) {
        throw new TesseraError('TESSERA_ERR_SPIFFE_ID_PATTERN', `"**" may only be the last segment of ${where}`);
      }
      return { kind: 'rest' } as const;
    }
    if (seg.includes('*')) {
      throw new TesseraError('TESSERA_ERR_SPIFFE_ID_PATTERN', `"${seg}" in ${where}: "*" must be a whole segment`);
    }
    return { kind: 'literal', value: seg } as const;
  });
}

function matchSegments(pattern: readonly Segment[], segs: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.kind === 'rest') return segs.length > i;
    if (i >= segs.length) return false;
    if (p.kind === 'literal' && p.value !== segs[i]) return false;
  }
  return segs.length === pattern.length;
}

export interface IdPattern {
  readonly source: string;
  readonly trustDomain: string;
  /** True when the pattern is a plain SPIFFE ID (no wildcard). */
  readonly exact: boolean;
  matches(id: SpiffeId): boolean;
}

/**
 * Compiles "spiffe://td/ns/*\/sa/web" or "spiffe://td/**". What is wrong with a pattern that an ID could have wrong
 * too is refused with the code SpiffeId.parse gives (an empty one, a scheme, a query or fragment, the trust domain,
 * a path segment); TESSERA_ERR_SPIFFE_ID_PATTERN is for the wildcards only.
 */
export function compileIdPattern(source: string): IdPattern {
  if (source === '') throw new TesseraError('TESSERA_ERR_SPIFFE_ID_EMPTY');
  if (!source.startsWith('spiffe://')) {
    throw new TesseraError('TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME', `${errorMessage('TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME')} Got pattern ${JSON.stringify(source.slice(0, 40))}.`);
  }
  const rest = source.slice('spiffe://'.length);
  // As SpiffeId.parse: "?" and "#" would end the path in a URI, so they are named as what they are, not as characters.
  const q = rest.indexOf('?');
  const f = rest.indexOf('#');
  if (q !== -1 && (f === -1 || q < f)) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_QUERY');
  if (f !== -1) throw new TesseraError('TESSERA_ERR_SPIFFE_ID_FRAGMENT');
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  validateTrustDomainName(td);
  const rawSegs = slash === -1 ? [] : rest.slice(slash + 1).split('/');
  const segments = compileSegments(rawSegs, `pattern "${source}"`);
  // Literal segments must themselves be valid SPIFFE path segments.
  const literalPath = segments.flatMap((s) => (s.kind === 'literal' ? [`/${s.value}`] : [])).join('');
  validatePath(literalPath);
  // SPIFFE-ID §2.3: no valid ID is over 2048 bytes, so a pattern whose shortest match is longer could never match.
  // "*" stands for at least one byte (same length); a final "**" for at least one segment (one byte shorter).
  const shortest = Buffer.byteLength(source, 'utf8') - (segments.at(-1)?.kind === 'rest' ? 1 : 0);
  if (shortest > MAX_SPIFFE_ID_BYTES) {
    throw new TesseraError('TESSERA_ERR_SPIFFE_ID_TOO_LONG', `${errorMessage('TESSERA_ERR_SPIFFE_ID_TOO_LONG')} The pattern matches only IDs of ${shortest} bytes or more, so it can never match.`);
  }
  const exact = segments.every((s) => s.kind === 'literal');
  return Object.freeze({
    source,
    trustDomain: td,
    exact,
    matches: (id: SpiffeId) => id.trustDomain.name === td && matchSegments(segments, id.segments()),
  });
}

export interface PathPattern {
  readonly source: string;
  matches(path: string): boolean;
}

/** Compiles an HTTP path pattern ("/v1/*", "/static/**", "/healthz"); the query string is ignored. */
export function compilePathPattern(source: string): PathPattern {
  if (!source.startsWith('/')) {
    throw new TesseraError('TESSERA_ERR_SPIFFE_ID_PATTERN', `path pattern "${source}" must start with "/"`);
  }
  const segments = compileSegments(source.slice(1).split('/'), `path pattern "${source}"`);
  return Object.freeze({
    source,
    matches: (path: string) => {
      const q = path.indexOf('?');
      const p = q === -1 ? path : path.slice(0, q);
      return p.startsWith('/') && matchSegments(segments, p.slice(1).split('/'));
    },
  });
}
