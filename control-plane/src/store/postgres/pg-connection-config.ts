// Turns the operator's PostgreSQL URL (store.url, or the secret in store.urlFile) into the driver's connection
// settings: host, port, user, password and database, TLS as its sslmode asks (libpq's meanings, checked here rather
// than left to the driver), and a redacted form for every log line and error message: the password never leaves.
import { TesseraError } from '../../../../common/errors.js';
import { readNamedFile } from '../../../../shared-io/read-named-file.js';

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** TLS options for node:tls, or false for a plain connection. */
export type PgTls = false | { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly rejectUnauthorized: boolean; readonly checkServerIdentity?: () => undefined};

export interface PgConnectionConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string | undefined;
  readonly sslmode: SslMode;
  readonly ssl: PgTls;
  /** The URL with its password replaced by "***": the only form that is ever logged. */
  readonly redacted: string;
}

export type PgUrlSource = { readonly url: string } | { readonly urlFile: string };

const SCHEMES = new Set(['postgres:', 'postgresql:']);
/** Query parameters Tessera reads itself; any other one is refused (it would be silently ignored otherwise). */
const KNOWN_PARAMS = new Set(['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'host', 'port', 'user', 'password', 'dbname']);

function invalid(why: string, redacted: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CONFIG_INVALID', `store.url ${redacted}: ${why}`, { key: 'store.url' });
}

/** The URL as it may be shown: user, host, port, database and query, the password (anywhere in it) masked. */
export function redactPgUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    // Not a URL at all: show nothing of it, it may be a password pasted in the wrong place.
    return '(unparseable URL)';
  }
}

/** Reads urlFile once (trimmed; a Secret mounted as a file), or takes url as it is. */
export async function resolvePgUrl(src: PgUrlSource): Promise<string> {
  if ('url' in src) return src.url.trim();
  const data = await readNamedFile({ path: src.urlFile, what: 'store.urlFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' });
  return data.toString('utf8').trim();
}

/** Parses and checks the URL, reading sslrootcert/sslcert/sslkey files it names. */
export async function pgConnectionConfig(raw: string): Promise<PgConnectionConfig> {
  const { q, sslmode, redacted, ...fields } = parsePgUrl(raw);
  const file = async (param: string) => {
    const path = q.get(param);
    if (path === null || path === '' || path === 'system') return undefined;
    return (await readNamedFile({ path, what: `store.url ${param}`, code: 'TESSERA_ERR_CONFIG_UNREADABLE' })).toString('utf8');
  };
  const [ca, cert, key] = [await file('sslrootcert'), await file('sslcert'), await file('sslkey')];
  return { ...fields, sslmode, ssl: tlsOptions(sslmode, ca, cert, key), redacted };
}

/**
 * What the URL says, checked without reading the files it names: at config load for an inline `store.url` (so its
 * faults name the file and line), and again when the store opens. Throws TESSERA_ERR_CONFIG_INVALID.
 */
export function parsePgUrl(raw: string): Omit<PgConnectionConfig, 'ssl'> & { readonly q: URLSearchParams } {
  const redacted = redactPgUrl(raw);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid('not a URL (expected postgres://user:password@host:port/database?sslmode=...)', redacted);
  }
  if (!SCHEMES.has(u.protocol)) throw invalid(`the scheme must be postgres:// or postgresql://, not ${u.protocol}//`, redacted);
  const q = u.searchParams;
  for (const k of q.keys()) if (!KNOWN_PARAMS.has(k)) throw invalid(`unknown parameter "${k}" (known: ${[...KNOWN_PARAMS].join(', ')})`, redacted);
  const sslmode = (q.get('sslmode') ?? 'disable') as SslMode | string;
  if (sslmode !== 'disable' && sslmode !== 'require' && sslmode !== 'verify-ca' && sslmode !== 'verify-full') {
    // prefer/allow fall back to plaintext in libpq; the driver cannot, and a silent downgrade is not offered.
    throw invalid(`sslmode=${sslmode} is not supported: use disable, require, verify-ca or verify-full`, redacted);
  }
  const host = q.get('host') ?? decodeURIComponent(u.hostname.replace(/^\[|\]$/g, ''));
  if (!host) throw invalid('no host', redacted);
  const portText = q.get('port') ?? (u.port || '5432');
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`bad port "${portText}"`, redacted);
  const database = q.get('dbname') ?? (decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined);
  const user = q.get('user') ?? (u.username ? decodeURIComponent(u.username) : undefined);
  const password = q.get('password') ?? (u.password ? decodeURIComponent(u.password) : undefined);
  if (!q.get('sslcert') !== !q.get('sslkey')) throw invalid('sslcert and sslkey go together', redacted);
  if (sslmode === 'disable' && (q.get('sslrootcert') || q.get('sslcert'))) throw invalid('sslrootcert/sslcert given with sslmode=disable', redacted);
  return { host, port, user, password, database, sslmode, redacted, q };
}

function tlsOptions(mode: SslMode, ca: string | undefined, cert: string | undefined, key: string | undefined): PgTls {
  if (mode === 'disable') return false;
  const client = cert && key ? { cert, key } : {};
  // libpq: "require" with a root certificate verifies the chain as verify-ca does; without one it only encrypts.
  if (mode === 'require' && ca === undefined) return { rejectUnauthorized: false, ...client };
  // No sslrootcert (or "system"): the platform's trusted roots, as for any TLS client.
  const trust = ca === undefined ? {} : { ca };
  // The driver checks the name against the host (SNI only for names, never for an IP address).
  if (mode === 'verify-full') return { rejectUnauthorized: true, ...trust, ...client };
  return { rejectUnauthorized: true, checkServerIdentity: () => undefined, ...trust, ...client };
}
