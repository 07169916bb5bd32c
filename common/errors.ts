// The one catalogue of stable error codes (TESSERA_ERR_<AREA>_<WHAT>) and the error type that carries them.
// Callers match on `code`, never on message text; docs/errors.md is kept in sync by a test.

export const ERROR_CATALOGUE = {
  // --- SPIFFE ID (common/spiffe/spiffe-id.ts) ---
  TESSERA_ERR_SPIFFE_ID_EMPTY: 'The SPIFFE ID is empty.',
  TESSERA_ERR_SPIFFE_ID_TOO_LONG: 'The SPIFFE ID is longer than 2048 bytes.',
  TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME: 'The SPIFFE ID does not start with the lower-case scheme "spiffe://".',
  TESSERA_ERR_SPIFFE_ID_NO_TRUST_DOMAIN: 'The SPIFFE ID has no trust domain.',
  TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR: 'The trust domain holds a character other than a-z, 0-9, ".", "-", "_".',
  TESSERA_ERR_SPIFFE_ID_USERINFO: 'The SPIFFE ID carries user info ("@"), which the standard forbids.',
  TESSERA_ERR_SPIFFE_ID_PORT: 'The SPIFFE ID carries a port (":"), which the standard forbids.',
  TESSERA_ERR_SPIFFE_ID_QUERY: 'The SPIFFE ID carries a query ("?"), which the standard forbids.',
  TESSERA_ERR_SPIFFE_ID_FRAGMENT: 'The SPIFFE ID carries a fragment ("#"), which the standard forbids.',
  TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT: 'A path segment is empty ("//" or a trailing "/").',
  TESSERA_ERR_SPIFFE_ID_DOT_SEGMENT: 'A path segment is "." or "..".',
  TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR: 'A path segment holds a character other than a-z, A-Z, 0-9, ".", "-", "_".',
  TESSERA_ERR_SPIFFE_ID_PATTERN: 'A SPIFFE ID pattern is malformed (only a whole "*" segment or a final "**" is special).',

  // --- X.509-SVID verification (common/spiffe/x509-svid.ts) ---
  TESSERA_ERR_SVID_EMPTY_CHAIN: 'No certificate was presented.',
  TESSERA_ERR_SVID_MALFORMED: 'A certificate in the chain could not be parsed.',
  TESSERA_ERR_SVID_NO_URI_SAN: 'The leaf has no URI SAN.',
  TESSERA_ERR_SVID_MULTIPLE_URI_SANS: 'The leaf has more than one URI SAN.',
  TESSERA_ERR_SVID_NOT_SPIFFE_ID: 'The leaf URI SAN is not a valid SPIFFE ID.',
  TESSERA_ERR_SVID_LEAF_IS_CA: 'The leaf has basicConstraints cA=true.',
  TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN: 'The leaf has keyUsage keyCertSign.',
  TESSERA_ERR_SVID_LEAF_CRL_SIGN: 'The leaf has keyUsage cRLSign.',
  TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE: 'The leaf lacks keyUsage digitalSignature.',
  TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA: 'An intermediate certificate is not a CA.',
  TESSERA_ERR_SVID_EXPIRED: 'A certificate in the chain has expired.',
  TESSERA_ERR_SVID_NOT_YET_VALID: 'A certificate in the chain is not valid yet.',
  TESSERA_ERR_SVID_NO_BUNDLE: 'There is no trust bundle for the SVID\'s trust domain.',
  TESSERA_ERR_SVID_UNKNOWN_CA: 'The chain does not lead to any authority of the SVID\'s trust domain.',
  TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN: 'The chain leads to an authority of another trust domain than the SVID\'s.',
  TESSERA_ERR_SVID_BAD_SIGNATURE: 'A signature in the chain does not verify.',
  TESSERA_ERR_SVID_ID_MISMATCH: 'The SVID is valid but its SPIFFE ID is not the one expected.',

  // --- Trust bundles and PEM (common/spiffe/trust-bundle.ts, common/pki/pem.ts) ---
  TESSERA_ERR_BUNDLE_EMPTY: 'The trust bundle holds no certificate.',
  TESSERA_ERR_BUNDLE_NOT_CA: 'A trust-bundle certificate is not a CA certificate.',
  TESSERA_ERR_PEM_MALFORMED: 'The PEM text could not be decoded.',
  TESSERA_ERR_PKI_KEY_MISMATCH: 'The private key does not match the certificate.',
  TESSERA_ERR_PKI_UNSUPPORTED_KEY: 'The key type or size is not supported (ECDSA P-256 or RSA >= 2048).',
  TESSERA_ERR_CSR_MALFORMED: 'The certificate signing request is not valid DER PKCS#10.',
  TESSERA_ERR_CSR_BAD_SIGNATURE: 'The certificate signing request is not signed by its own key.',

  // --- Durations and generic config (common/duration.ts, config loaders) ---
  TESSERA_ERR_CONFIG_BAD_DURATION: 'A duration is malformed (use e.g. 500ms, 60s, 15m, 1h, 1h30m).',
  TESSERA_ERR_CONFIG_INVALID: 'A configuration file failed validation (the message names file, line and key).',
  TESSERA_ERR_CONFIG_UNREADABLE: 'A configuration file could not be read or parsed as YAML.',

  // --- Command line (cli/) ---
  TESSERA_ERR_CLI_USAGE: 'The command line is malformed (unknown command or flag, missing argument).',
  TESSERA_ERR_CLI_FILE_UNREADABLE: 'A file named on the command line could not be read.',

  // --- Local mesh (cli/up/) ---
  TESSERA_ERR_UP_START_FAILED: 'A part of the local mesh did not start or did not become ready (its log file is named).',
  TESSERA_ERR_UP_PORT_IN_USE: 'A port the local mesh wanted is already in use (the port and its owner are named).',
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message?: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message ?? ERROR_CATALOGUE[code], options);
    this.name = 'TesseraError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isTesseraError(e: unknown, code?: ErrorCode): e is TesseraError {
  return e instanceof TesseraError && (code === undefined || e.code === code);
}

/** A short, safe one-liner for logs and CLI output: code and message, never a stack. */
export function describeError(e: unknown): string {
  if (e instanceof TesseraError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
