// The fixed set of TLS handshake failure reasons (a metric label, never sent to a peer) and the mapping from
// Node/OpenSSL errors, X.509 verify codes and Tessera SVID verification failures onto it.

export const HANDSHAKE_REASONS = [
  'no_client_cert',
  'unknown_ca',
  'expired',
  'not_yet_valid',
  'bad_svid',
  'wrong_trust_domain',
  'bad_signature',
  'id_mismatch',
  'protocol',
  'plaintext',
  'timeout',
  'version',
  // The peer's SPIFFE ID or leaf serial is on the operator's deny-list (tessera revoke).
  'revoked',
  'other',
] as const;

export type HandshakeReason = (typeof HANDSHAKE_REASONS)[number];

const REASON_SET: ReadonlySet<string> = new Set(HANDSHAKE_REASONS);

export function isHandshakeReason(s: unknown): s is HandshakeReason {
  return typeof s === 'string' && REASON_SET.has(s);
}

// Exact codes: Node's ERR_SSL_* (OpenSSL reason text upper-cased), ERR_TLS_*, X.509 verify codes (as set on
// client errors and `socket.authorizationError`), socket errnos, and Tessera's SVID verification codes.
const BY_CODE: ReadonlyMap<string, HandshakeReason> = new Map<string, HandshakeReason>([
  // A plaintext (HTTP or garbage) client talking to a TLS port.
  ['ERR_SSL_HTTP_REQUEST', 'plaintext'],
  ['ERR_SSL_HTTPS_PROXY_REQUEST', 'plaintext'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'plaintext'],
  // Protocol version negotiation.
  ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'version'],
  ['ERR_SSL_NO_PROTOCOLS_AVAILABLE', 'version'],
  ['ERR_SSL_UNSUPPORTED_SSL_VERSION', 'version'],
  ['ERR_SSL_VERSION_TOO_LOW', 'version'],
  ['ERR_SSL_VERSION_TOO_HIGH', 'version'],
  ['ERR_SSL_UNKNOWN_PROTOCOL', 'version'],
  ['ERR_SSL_TLS_INVALID_PROTOCOL_VERSION', 'version'],
  ['ERR_TLS_INVALID_PROTOCOL_VERSION', 'version'],
  // Missing client certificate.
  ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'no_client_cert'],
  ['ERR_SSL_NO_CERTIFICATE_RETURNED', 'no_client_cert'],
  ['TESSERA_ERR_SVID_EMPTY_CHAIN', 'no_client_cert'],
  // X.509 verify results (OpenSSL X509_V_ERR_* as Node names them).
  ['CERT_HAS_EXPIRED', 'expired'],
  ['CRL_HAS_EXPIRED', 'expired'],
  ['CERT_NOT_YET_VALID', 'not_yet_valid'],
  ['ERROR_IN_CERT_NOT_BEFORE_FIELD', 'bad_svid'],
  ['ERROR_IN_CERT_NOT_AFTER_FIELD', 'bad_svid'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'unknown_ca'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'unknown_ca'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown_ca'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'unknown_ca'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'unknown_ca'],
  ['CERT_UNTRUSTED', 'unknown_ca'],
  ['CERT_REJECTED', 'unknown_ca'],
  ['CERT_SIGNATURE_FAILURE', 'bad_signature'],
  ['UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'bad_signature'],
  ['UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'bad_svid'],
  ['INVALID_CA', 'bad_svid'],
  ['PATH_LENGTH_EXCEEDED', 'bad_svid'],
  ['INVALID_PURPOSE', 'bad_svid'],
  ['CERT_CHAIN_TOO_LONG', 'bad_svid'],
  // A certificate that breaks the rules rather than one from an unknown authority (the edge's clientCa check).
  ['KEYUSAGE_NO_CERTSIGN', 'bad_svid'],
  ['UNHANDLED_CRITICAL_EXTENSION', 'bad_svid'],
  ['INVALID_NON_CA', 'bad_svid'],
  ['INVALID_EXTENSION', 'bad_svid'],
  ['PERMITTED_VIOLATION', 'bad_svid'],
  ['EXCLUDED_VIOLATION', 'bad_svid'],
  ['SUBTREE_MINMAX', 'bad_svid'],
  ['UNSUPPORTED_CONSTRAINT_TYPE', 'bad_svid'],
  ['UNSUPPORTED_CONSTRAINT_SYNTAX', 'bad_svid'],
  ['UNSUPPORTED_NAME_SYNTAX', 'bad_svid'],
  ['INVALID_POLICY_EXTENSION', 'bad_svid'],
  ['NO_EXPLICIT_POLICY', 'bad_svid'],
  ['EE_KEY_TOO_SMALL', 'bad_svid'],
  ['CA_KEY_TOO_SMALL', 'bad_svid'],
  ['CA_MD_TOO_WEAK', 'bad_svid'],
  ['HOSTNAME_MISMATCH', 'id_mismatch'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'id_mismatch'],
  // Timeouts and a peer that went away mid-handshake.
  ['ERR_TLS_HANDSHAKE_TIMEOUT', 'timeout'],
  ['ETIMEDOUT', 'timeout'],
  ['ECONNRESET', 'protocol'],
  ['EPIPE', 'protocol'],
  ['ECONNABORTED', 'protocol'],
  ['ERR_SSL_UNEXPECTED_EOF_WHILE_READING', 'protocol'],
  ['ERR_SSL_NO_SHARED_CIPHER', 'protocol'],
  ['ERR_TLS_RENEGOTIATION_DISABLED', 'protocol'],
  // Tessera's own SVID verification (common/spiffe/x509-svid.ts), when the listener verifies after the handshake.
  ['TESSERA_ERR_SVID_MALFORMED', 'bad_svid'],
  ['TESSERA_ERR_SVID_NO_URI_SAN', 'bad_svid'],
  ['TESSERA_ERR_SVID_MULTIPLE_URI_SANS', 'bad_svid'],
  ['TESSERA_ERR_SVID_NOT_SPIFFE_ID', 'bad_svid'],
  ['TESSERA_ERR_SVID_LEAF_IS_CA', 'bad_svid'],
  ['TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN', 'bad_svid'],
  ['TESSERA_ERR_SVID_LEAF_CRL_SIGN', 'bad_svid'],
  ['TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE', 'bad_svid'],
  ['TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA', 'bad_svid'],
  ['TESSERA_ERR_SVID_EXPIRED', 'expired'],
  ['TESSERA_ERR_SVID_NOT_YET_VALID', 'not_yet_valid'],
  ['TESSERA_ERR_SVID_NO_BUNDLE', 'unknown_ca'],
  ['TESSERA_ERR_SVID_UNKNOWN_CA', 'unknown_ca'],
  ['TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN', 'wrong_trust_domain'],
  ['TESSERA_ERR_SVID_BAD_SIGNATURE', 'bad_signature'],
  ['TESSERA_ERR_SVID_ID_MISMATCH', 'id_mismatch'],
  ['TESSERA_ERR_SVID_NOT_WORKLOAD_ID', 'bad_svid'],
  ['TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION', 'bad_svid'],
  ['TESSERA_ERR_SVID_UNRELATED_CERT', 'bad_svid'],
  // RFC 5280 / X509-SVID path rules OpenSSL enforces outbound (PATH_LENGTH_EXCEEDED, INVALID_PURPOSE,
  // CA_MD_TOO_WEAK, EE_KEY_TOO_SMALL above): the same reason whichever side refuses the certificate.
  ['TESSERA_ERR_SVID_NAME_CONSTRAINTS', 'bad_svid'],
  ['TESSERA_ERR_SVID_PATH_LENGTH', 'bad_svid'],
  ['TESSERA_ERR_SVID_BAD_EKU', 'bad_svid'],
  ['TESSERA_ERR_SVID_WEAK_SIGNATURE', 'bad_svid'],
  ['TESSERA_ERR_SVID_WEAK_KEY', 'bad_svid'],
  // The operator's deny-list (proxy/src/tls/deny-list.ts).
  ['TESSERA_ERR_REVOCATION_ID_BANNED', 'revoked'],
  ['TESSERA_ERR_REVOCATION_SERIAL_BANNED', 'revoked'],
]);

// TLS alerts the peer sent us (Node: ERR_SSL_<SSLV3|TLSV1|TLSV13|SSL/TLS>_ALERT_<NAME>, prefix varies by
// OpenSSL version and TLS version). The alert says what the peer disliked about our side.
const BY_ALERT: ReadonlyMap<string, HandshakeReason> = new Map<string, HandshakeReason>([
  ['PROTOCOL_VERSION', 'version'],
  ['INAPPROPRIATE_FALLBACK', 'version'],
  ['INSUFFICIENT_SECURITY', 'version'],
  ['CERTIFICATE_REQUIRED', 'no_client_cert'],
  ['UNKNOWN_CA', 'unknown_ca'],
  ['CERTIFICATE_EXPIRED', 'expired'],
  ['BAD_CERTIFICATE', 'bad_svid'],
  ['UNSUPPORTED_CERTIFICATE', 'bad_svid'],
  ['CERTIFICATE_UNKNOWN', 'bad_svid'],
  ['DECRYPT_ERROR', 'bad_signature'],
  ['CERTIFICATE_REVOKED', 'revoked'],
  ['ACCESS_DENIED', 'other'],
]);
const ALERT_CODE = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13|SSL\/TLS)_ALERT_([A-Z_]+)$/;

// Last resort for errors without a known code (wrapped errors, other libraries): OpenSSL reason texts.
const BY_MESSAGE: readonly (readonly [RegExp, HandshakeReason])[] = [
  [/http request|wrong version number|https proxy request/, 'plaintext'],
  [/unsupported protocol|protocol version|no protocols available|version too low/, 'version'],
  [/peer did not return a certificate|certificate required|no certificate returned/, 'no_client_cert'],
  [/certificate (has )?expired/, 'expired'],
  [/not yet valid/, 'not_yet_valid'],
  [/unknown ca|unable to get (local )?issuer|self[- ]signed certificate|unable to verify the first certificate/, 'unknown_ca'],
  [/signature failure|bad signature|decrypt error/, 'bad_signature'],
  [/handshake timeout|timed out/, 'timeout'],
  [/socket hang up|econnreset|epipe|disconnected before secure tls connection/, 'protocol'],
];

const MAX_CAUSE_DEPTH = 4;

/** Maps a handshake error (or a verify code string, or an SVID failure `{reason}`) to the fixed reason set. */
export function classifyTlsError(err: unknown): HandshakeReason {
  return classify(err, 0);
}

function classify(err: unknown, depth: number): HandshakeReason {
  if (typeof err === 'string') return byCode(err) ?? byMessage(err) ?? 'other';
  if (err === null || typeof err !== 'object') return 'other';
  const e = err as { code?: unknown; reason?: unknown; message?: unknown; cause?: unknown };
  // An SvidFailure from verifyX509Svid already carries a reason of this set.
  if (isHandshakeReason(e.reason)) return e.reason;
  if (typeof e.code === 'string') {
    const r = byCode(e.code);
    if (r) return r;
  }
  if (depth < MAX_CAUSE_DEPTH && e.cause !== undefined && e.cause !== err) {
    const r = classify(e.cause, depth + 1);
    if (r !== 'other') return r;
  }
  if (typeof e.message === 'string') {
    const r = byMessage(e.message);
    if (r) return r;
  }
  // Any other OpenSSL failure during the handshake is a protocol-level one.
  if (typeof e.code === 'string' && e.code.startsWith('ERR_SSL_')) return 'protocol';
  return 'other';
}

function byCode(code: string): HandshakeReason | undefined {
  const exact = BY_CODE.get(code);
  if (exact) return exact;
  const alert = ALERT_CODE.exec(code);
  if (alert) return BY_ALERT.get(alert[1]!) ?? 'protocol';
  return undefined;
}

function byMessage(message: string): HandshakeReason | undefined {
  const m = message.slice(0, 512).toLowerCase();
  for (const [re, reason] of BY_MESSAGE) if (re.test(m)) return reason;
  return undefined;
}
