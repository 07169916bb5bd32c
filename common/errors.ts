// The one catalogue of stable error codes (TESSERA_ERR_<AREA>_<WHAT>) and the error type that carries them.
// Each entry carries the gRPC and HTTP status an answer with that code gets, so mapping a code is a lookup.
// Callers match on `code`, never on message text; docs/errors.md is kept in sync by a test.
import { GRPC_STATUS, type GrpcStatus } from './grpc-status-codes.js';

export interface CatalogueEntry {
  /** The gRPC status a control-plane answer with this code carries. */
  readonly grpc: GrpcStatus;
  /** The HTTP status an HTTP answer (operator API, webhook, proxy) with this code carries. */
  readonly http: number;
  readonly message: string;
}

function entry(grpc: GrpcStatus, http: number, message: string): CatalogueEntry {
  return { grpc, http, message };
}

// Unauthenticated peers get HTTP 403, not 401: Tessera has no HTTP authentication scheme to name in WWW-Authenticate.
const { ABORTED, CANCELLED, FAILED_PRECONDITION, INTERNAL, INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAUTHENTICATED, UNAVAILABLE, UNIMPLEMENTED } =
  GRPC_STATUS;

export const ERROR_CATALOGUE = {
  // --- SPIFFE ID (common/spiffe/spiffe-id.ts) ---
  TESSERA_ERR_SPIFFE_ID_EMPTY: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID is empty.'),
  TESSERA_ERR_SPIFFE_ID_TOO_LONG: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID is longer than 2048 bytes.'),
  TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID does not start with the lower-case scheme "spiffe://".'),
  TESSERA_ERR_SPIFFE_ID_NO_TRUST_DOMAIN: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID has no trust domain.'),
  TESSERA_ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG: entry(INVALID_ARGUMENT, 400, 'The trust domain name is longer than 255 bytes (the limit of a DNS name, which a trust domain name is meant to be).'),
  TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR: entry(INVALID_ARGUMENT, 400, 'The trust domain holds a character other than a-z, 0-9, ".", "-", "_".'),
  TESSERA_ERR_SPIFFE_ID_USERINFO: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID carries user info ("@"), which the standard forbids.'),
  TESSERA_ERR_SPIFFE_ID_PORT: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID carries a port (":"), which the standard forbids.'),
  TESSERA_ERR_SPIFFE_ID_QUERY: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID carries a query ("?"), which the standard forbids.'),
  TESSERA_ERR_SPIFFE_ID_FRAGMENT: entry(INVALID_ARGUMENT, 400, 'The SPIFFE ID carries a fragment ("#"), which the standard forbids.'),
  TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT: entry(INVALID_ARGUMENT, 400, 'A path segment is empty ("//" or a trailing "/").'),
  TESSERA_ERR_SPIFFE_ID_DOT_SEGMENT: entry(INVALID_ARGUMENT, 400, 'A path segment is "." or "..".'),
  TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR: entry(INVALID_ARGUMENT, 400, 'A path segment holds a character other than a-z, A-Z, 0-9, ".", "-", "_".'),
  TESSERA_ERR_SPIFFE_ID_PATTERN: entry(INVALID_ARGUMENT, 400, 'A SPIFFE ID pattern is malformed (only a whole "*" segment or a final "**" is special).'),

  // --- X.509-SVID verification (common/spiffe/x509-svid.ts) ---
  TESSERA_ERR_SVID_EMPTY_CHAIN: entry(UNAUTHENTICATED, 403, 'No certificate was presented.'),
  TESSERA_ERR_SVID_MALFORMED: entry(UNAUTHENTICATED, 403, 'A certificate in the chain could not be parsed.'),
  TESSERA_ERR_SVID_NO_URI_SAN: entry(UNAUTHENTICATED, 403, 'The leaf has no URI SAN.'),
  TESSERA_ERR_SVID_MULTIPLE_URI_SANS: entry(UNAUTHENTICATED, 403, 'The leaf has more than one URI SAN.'),
  TESSERA_ERR_SVID_NOT_SPIFFE_ID: entry(UNAUTHENTICATED, 403, 'The leaf URI SAN is not a valid SPIFFE ID.'),
  TESSERA_ERR_SVID_LEAF_IS_CA: entry(UNAUTHENTICATED, 403, 'The leaf has basicConstraints cA=true.'),
  TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN: entry(UNAUTHENTICATED, 403, 'The leaf has keyUsage keyCertSign.'),
  TESSERA_ERR_SVID_LEAF_CRL_SIGN: entry(UNAUTHENTICATED, 403, 'The leaf has keyUsage cRLSign.'),
  TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE: entry(UNAUTHENTICATED, 403, 'The leaf lacks keyUsage digitalSignature.'),
  TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA: entry(UNAUTHENTICATED, 403, 'An intermediate certificate is not a CA.'),
  TESSERA_ERR_SVID_EXPIRED: entry(UNAUTHENTICATED, 403, 'A certificate in the chain has expired.'),
  TESSERA_ERR_SVID_NOT_YET_VALID: entry(UNAUTHENTICATED, 403, 'A certificate in the chain is not valid yet.'),
  TESSERA_ERR_SVID_NO_BUNDLE: entry(UNAUTHENTICATED, 403, 'There is no trust bundle for the SVID\'s trust domain.'),
  TESSERA_ERR_SVID_UNKNOWN_CA: entry(UNAUTHENTICATED, 403, 'The chain does not lead to any authority of the SVID\'s trust domain.'),
  TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN: entry(UNAUTHENTICATED, 403, 'The chain leads to an authority of another trust domain than the SVID\'s.'),
  TESSERA_ERR_SVID_BAD_SIGNATURE: entry(UNAUTHENTICATED, 403, 'A signature in the chain does not verify.'),
  TESSERA_ERR_SVID_ID_MISMATCH: entry(UNAUTHENTICATED, 403, 'The SVID is valid but its SPIFFE ID is not the one expected.'),
  TESSERA_ERR_SVID_NOT_WORKLOAD_ID: entry(UNAUTHENTICATED, 403, 'The leaf\'s SPIFFE ID is the bare trust-domain ID (no path), which names the trust domain, not a workload.'),
  TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION: entry(UNAUTHENTICATED, 403, 'A certificate carries a critical extension Tessera does not process (RFC 5280 §4.2: it must be rejected).'),
  TESSERA_ERR_SVID_UNRELATED_CERT: entry(UNAUTHENTICATED, 403, 'The chain holds a certificate that is not on the path from the leaf to the trust bundle.'),
  TESSERA_ERR_SVID_NAME_CONSTRAINTS: entry(UNAUTHENTICATED, 403, 'A CA on the path has name constraints (RFC 5280 §4.2.1.10) that a certificate below it breaks (a URI host or DNS name excluded or outside the permitted subtrees), or constraints of a kind Tessera does not evaluate (directory names, IP addresses, e-mail).'),
  TESSERA_ERR_SVID_PATH_LENGTH: entry(UNAUTHENTICATED, 403, 'A CA on the path has a basicConstraints pathLenConstraint smaller than the number of intermediate CAs below it (RFC 5280 §4.2.1.9).'),
  TESSERA_ERR_SVID_BAD_EKU: entry(UNAUTHENTICATED, 403, 'An extendedKeyUsage on the path leaves out a purpose the peer needs: an SVID leaf that has one must list both serverAuth and clientAuth (X509-SVID §4.4), an edge client\'s leaf clientAuth; a CA certificate that has one must list the same purposes (anyExtendedKeyUsage alone does not count).'),
  TESSERA_ERR_SVID_WEAK_SIGNATURE: entry(UNAUTHENTICATED, 403, 'A certificate on the path is signed with an algorithm outside ECDSA or RSA (PKCS#1 v1.5 or PSS) with SHA-256, SHA-384 or SHA-512, such as SHA-1 or MD5.'),
  TESSERA_ERR_SVID_WEAK_KEY: entry(UNAUTHENTICATED, 403, 'A certificate on the path carries a key outside the accepted set: RSA of 2048 bits or more with a public exponent of at most 2^31-1, or EC on P-256 or P-384 (a trust anchor also P-521); smaller RSA keys, larger exponents (judged before any signature is checked with the key), other curves and other key types are refused.'),

  // --- JWT-SVIDs and the SPIFFE bundle document (common/spiffe/jwt-svid.ts, spiffe-bundle.ts) ---
  TESSERA_ERR_JWT_SVID_MALFORMED: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID is not a well-formed JWS (three base64url parts of JSON objects, at most 16 KiB, nothing around them: no whitespace), or lacks an exp that is a date (a number of seconds within ±8.64e12, what a JavaScript Date holds), or has an nbf or iat that is not one, or has an unknown typ or crit header, or repeats a member name in one object of its header or claims (JSON parsers differ on which copy they read).'),
  TESSERA_ERR_JWT_SVID_ALG_NOT_ALLOWED: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID alg is not one of RS/ES/PS 256/384/512 (none and HMAC are never accepted).'),
  TESSERA_ERR_JWT_SVID_NO_AUDIENCE: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID has no aud claim.'),
  TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID aud claim does not hold the audience it is validated for.'),
  TESSERA_ERR_JWT_SVID_EXPIRED: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID is past its exp (beyond the tolerated clock skew).'),
  TESSERA_ERR_JWT_SVID_NOT_YET_VALID: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID nbf or iat is in the future (beyond the tolerated clock skew).'),
  TESSERA_ERR_JWT_SVID_BAD_SUBJECT: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID sub claim is missing, is not a SPIFFE ID of a workload, or is a reserved ID of its trust domain (the bare trust-domain ID, the control plane\'s own).'),
  TESSERA_ERR_JWT_SVID_NO_BUNDLE: entry(INVALID_ARGUMENT, 400, 'There is no JWT bundle for the trust domain of the JWT-SVID subject.'),
  TESSERA_ERR_JWT_SVID_UNKNOWN_KEY: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID kid is missing or is not in the JWT bundle of the subject\'s own trust domain.'),
  TESSERA_ERR_JWT_SVID_BAD_SIGNATURE: entry(INVALID_ARGUMENT, 400, 'The JWT-SVID signature does not verify with the key its kid names (or the alg does not fit that key).'),
  TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED: entry(INVALID_ARGUMENT, 400, 'A JWT-SVID was asked for (or validated) without an audience, or with an empty or oversized one.'),
  TESSERA_ERR_JWT_SVID_UNAVAILABLE: entry(UNAVAILABLE, 503, 'No JWT-SVID can be had now: the proxy takes its identity from files (no control plane signs JWT-SVIDs for it), has no SVID yet, or the control plane refused or did not answer the mint (the gRPC status is named).'),
  TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED: entry(INVALID_ARGUMENT, 400, 'A SPIFFE bundle document (JWKS) is malformed: not JSON, no keys array, a jwt-svid key without kid or a duplicate kid, an x5c that is not an array of DER certificates, a spiffe_sequence or refresh hint that is not a non-negative integer, an EC/RSA key that is not a valid public key, or more keys than a document may hold (256, of which at most 16 distinct RSA keys: each costs a strength check). Entries of another use or key type and x509-svid entries without x5c are skipped, not refused.'),
  TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN: entry(FAILED_PRECONDITION, 502, 'A federated bundle endpoint served a bundle whose X.509 authorities name another trust domain (their SPIFFE URI SAN) than the one configured for it: refused, the last good bundle is kept.'),
  TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES: entry(FAILED_PRECONDITION, 502, 'A federated bundle endpoint served a bundle with no usable x509-svid key (or one that is not a CA certificate): refused, the last good bundle is kept.'),
  TESSERA_ERR_FEDERATION_BUNDLE_EXPIRED: entry(FAILED_PRECONDITION, 502, 'Every x509-svid authority of a fetched federated bundle (or a bootstrap bundle) has expired: refused, the last good bundle is kept.'),
  TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY: entry(INVALID_ARGUMENT, 400, 'A SPIFFE bundle document holds a key weaker than the CA accepts of its own workloads: an EC key on a curve other than P-256, P-384 or P-521, or an RSA key outside 2048 to 4096 bits or failing the CA\'s RSA rules (an exponent other than odd 65537 to 2^31-1, a prime or small-factor modulus).'),
  TESSERA_ERR_FEDERATION_BUNDLE_ROLLBACK: entry(FAILED_PRECONDITION, 502, 'A federated bundle endpoint served a document with a lower spiffe_sequence than the bundle held (an old document replayed, by a cache for one): refused, the last good bundle is kept. A peer that really restarted its sequence: see docs/control-plane.md.'),
  TESSERA_ERR_FEDERATION_FETCH_FAILED: entry(UNAVAILABLE, 502, 'A federated bundle endpoint could not be fetched: connection or TLS failure, an https_spiffe endpoint that did not present the configured SPIFFE ID under the last good bundle, a non-200 answer, or an oversized body. The last good bundle is kept.'),

  // --- Trust bundles and PEM (common/spiffe/trust-bundle.ts, common/pki/pem.ts) ---
  TESSERA_ERR_BUNDLE_EMPTY: entry(INVALID_ARGUMENT, 400, 'The trust bundle holds no certificate.'),
  TESSERA_ERR_BUNDLE_NOT_CA: entry(INVALID_ARGUMENT, 400, 'A trust-bundle certificate is not a CA certificate.'),
  TESSERA_ERR_PEM_MALFORMED: entry(INVALID_ARGUMENT, 400, 'The PEM text could not be decoded.'),
  TESSERA_ERR_PEM_WRONG_TYPE: entry(INVALID_ARGUMENT, 400, 'A PEM file holds blocks of another type than expected, e.g. a key where certificates belong (file, found and expected types are named).'),
  TESSERA_ERR_PKI_UNSUPPORTED_KEY: entry(INVALID_ARGUMENT, 400, 'The key type or size is not supported: ECDSA P-256, or RSA of 2048 to 4096 bits.'),
  TESSERA_ERR_PKI_WEAK_KEY: entry(INVALID_ARGUMENT, 400, 'The RSA key, of a supported size, fails the strength rules (a public exponent other than odd 65537 to 2^31-1; a prime, prime-power or small-factor modulus, or one whose two primes are close); the message names the rule.'),
  TESSERA_ERR_CSR_MALFORMED: entry(INVALID_ARGUMENT, 400, 'The certificate signing request is not valid DER PKCS#10.'),
  TESSERA_ERR_CSR_BAD_SIGNATURE: entry(INVALID_ARGUMENT, 400, 'The certificate signing request is not signed by its own key.'),

  // --- Durations and generic config (common/duration.ts, config loaders) ---
  TESSERA_ERR_CONFIG_BAD_DURATION: entry(INVALID_ARGUMENT, 400, 'A duration is malformed (use e.g. 500ms, 60s, 15m, 1h, 1h30m); a command-line flag names it in its TESSERA_ERR_CLI_USAGE line, a config file in its TESSERA_ERR_CONFIG_INVALID line.'),
  TESSERA_ERR_CONFIG_INVALID: entry(INVALID_ARGUMENT, 400, 'A configuration file failed validation (the message names file, line and key).'),
  TESSERA_ERR_CONFIG_UNREADABLE: entry(INTERNAL, 500, 'A configuration file, or a file a configuration key names, could not be read (missing, unreadable, not a regular file, over its size bound, not UTF-8) or parsed as YAML; the file is named, and the line for an encoding or YAML fault.'),

  // --- Command line (cli/) ---
  TESSERA_ERR_CLI_USAGE: entry(INVALID_ARGUMENT, 400, 'The command line is malformed (unknown command or flag, missing argument, a bad value or one outside the range of its flag; a malformed SPIFFE ID, pattern or trust domain names its TESSERA_ERR_SPIFFE_ID_* code, a malformed duration TESSERA_ERR_CONFIG_BAD_DURATION).'),
  TESSERA_ERR_CLI_FILE_UNREADABLE: entry(INTERNAL, 500, 'A file named on the command line could not be read: missing, unreadable, not a regular file (a FIFO, a device or a directory) or over its size bound (the file is named).'),
  TESSERA_ERR_CLI_FILE_UNWRITABLE: entry(INTERNAL, 500, 'A file named on the command line could not be written (the path and cause are named).'),
  TESSERA_ERR_CLI_INTERRUPTED: entry(CANCELLED, 499, 'A one-shot command was asked to stop (SIGTERM, SIGINT) before it finished; it exits 130 (SIGINT) or 143 (SIGTERM). A change it asked the control plane for may or may not have been made: check before retrying.'),
  TESSERA_ERR_CLI_INTERNAL: entry(INTERNAL, 500, 'A command failed with a fault it has no code of its own for (the cause is quoted): a defect to report, not a fault of the input.'),
  TESSERA_ERR_CLI_HARNESS_MISSING: entry(UNIMPLEMENTED, 501, '`tessera load` or `tessera bench` was run where the load harness is not installed (the container image leaves it and autocannon out).'),
  TESSERA_ERR_FILE_EMPTY: entry(INVALID_ARGUMENT, 400, 'A file named on the command line or in a configuration is empty (the file is named).'),

  // --- Benchmarks and load tests (bench/, cli/commands/{bench,bench-report,load}.ts) ---
  TESSERA_ERR_BENCH_PROCESS_FAILED: entry(INTERNAL, 500, 'A process the benchmark harness started exited early or did not become ready (its log tail is quoted).'),
  TESSERA_ERR_BENCH_ABORTED: entry(CANCELLED, 499, 'The benchmark was interrupted; every process it started was stopped.'),
  TESSERA_ERR_BENCH_RESULTS_INVALID: entry(INVALID_ARGUMENT, 400, 'A benchmark results file is not the JSON that `tessera bench --json` writes.'),
  TESSERA_ERR_BENCH_LOAD_FAILED: entry(UNAVAILABLE, 503, 'The load test got no successful response from the target (errors and status counts are named).'),
  TESSERA_ERR_BENCH_LOAD_ERRORS: entry(UNAVAILABLE, 503, 'The load test\'s failed share (TLS/connection failures, non-2xx answers, timeouts) is above --max-error-rate (each count is named).'),
  TESSERA_ERR_BENCH_LOAD_GENERATOR_MISSING: entry(FAILED_PRECONDITION, 412, 'The load generator asked for (`tessera bench --load wrk`) is not installed and could not be installed (not root, or apt-get failed); the message says how to get it.'),
  TESSERA_ERR_BENCH_LOAD_UNTRUSTED: entry(UNAUTHENTICATED, 403, 'The load target\'s certificate chain does not verify against the --ca bundle (the reason is named).'),

  // --- Authorization policy (common/policy/, cli/commands/policy-check.ts) ---
  TESSERA_ERR_POLICY_INVALID: entry(INVALID_ARGUMENT, 400, 'An authorization policy is invalid (the message names file, line and key).'),
  TESSERA_ERR_POLICY_DUPLICATE_NAME: entry(INVALID_ARGUMENT, 400, 'Two authorization policies share one name (both files are named).'),

  // --- Child processes (shared-io/process-supervisor.ts) ---
  TESSERA_ERR_PROCESS_NOT_READY: entry(INTERNAL, 500, 'A supervised child process could not start, exited before it was ready, or missed its deadline (its output is quoted).'),

  // --- Local mesh (cli/up/) ---
  TESSERA_ERR_UP_START_FAILED: entry(INTERNAL, 500, 'A part of the local mesh did not start or did not become ready (its log file is named).'),

  // --- Proxy identity lifecycle: control-plane source, config watch, Workload API (proxy/src/identity, workload-api) ---
  TESSERA_ERR_PROXY_LISTEN_FAILED: entry(INTERNAL, 500, 'A proxy listener could not bind its address (in use, not permitted, or its host does not resolve; the listener and its address are named). Every listener is bound before the proxy attests, so such a start has spent no join token.'),
  TESSERA_ERR_PROXY_START_FAILED: entry(INTERNAL, 500, 'The proxy could not start: a file or directory it needs cannot be used (the path and cause are named).'),
  TESSERA_ERR_UPSTREAM_QUEUE_FULL: entry(UNAVAILABLE, 503, 'Every upstream connection of a listener is busy and its wait queue is full; the request is answered 503 (upstream_unavailable).'),
  TESSERA_ERR_UPSTREAM_POOL_CLOSED: entry(UNAVAILABLE, 502, 'The listener is shutting down and its upstream pool takes no more requests; the request is answered 502 (upstream_unavailable).'),
  TESSERA_ERR_EDGE_CERT_INVALID: entry(INVALID_ARGUMENT, 400, 'An edge certificate or key file is unreadable, malformed, or the key does not match the certificate; at start the proxy refuses to run, on reload the previous certificates stay.'),
  TESSERA_ERR_EDGE_CLIENT_FOREIGN_ID: entry(UNAUTHENTICATED, 403, 'An edge client certificate issued by a client CA asserts a SPIFFE ID outside that CA\'s clientTrustDomain (or a mesh trust domain); the client is refused.'),
  TESSERA_ERR_IDENTITY_INVALID: entry(INVALID_ARGUMENT, 400, 'An SVID, key or bundle update does not validate (key mismatch, chain not verifying, expired); it was refused and the previous identity stays in force.'),
  TESSERA_ERR_IDENTITY_SIGN_FAILED: entry(UNAVAILABLE, 503, 'The control plane refused or could not answer an SVID request (the gRPC status is named).'),
  TESSERA_ERR_IDENTITY_STREAM_FAILED: entry(UNAVAILABLE, 503, 'A control-plane stream of the proxy (Config/Watch, Discovery/Watch) was refused or cut (the gRPC status and the control plane\'s own code are named); the proxy reconnects with back-off, keeping its SVID and last config meanwhile.'),
  TESSERA_ERR_REPORT_FAILED: entry(UNAVAILABLE, 503, 'The proxy\'s fleet report (Config/Report) was not taken: the control plane refused or did not answer it (the gRPC status and the control plane\'s own code are named), or the proxy has no SVID yet to authenticate it with. Logged at debug and counted in tessera_fleet_reports_total{result="failed"}; the next interval sends another.'),
  TESSERA_ERR_IDENTITY_CONTROL_PLANE_SWITCHED: entry(UNAVAILABLE, 503, 'The proxy closed one of its own control-plane streams to reopen it on the control-plane address now current (a failover or a failback); it reconnects after a short jittered delay, keeping its SVID and last config meanwhile.'),
  TESSERA_ERR_IDENTITY_RESOLVE_FAILED: entry(UNAVAILABLE, 503, 'A control-plane host name did not resolve (or not in time); the proxy keeps the addresses it last had for it, or dials the name as it is, and tries again after the next failure.'),
  TESSERA_ERR_IDENTITY_BAD_RESPONSE: entry(INTERNAL, 502, 'The control plane returned an SVID or bundle of the wrong form (wrong ID or trust domain, key mismatch, no bundle for its trust domain); it was refused (a chain that does not verify is TESSERA_ERR_IDENTITY_INVALID).'),
  TESSERA_ERR_IDENTITY_TOKEN_UNREADABLE: entry(INTERNAL, 500, 'The join-token or Kubernetes token file could not be read or is empty.'),
  TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED: entry(INTERNAL, 500, 'The local TPM could not make the quote for TPM attestation: tpm2_quote is missing, failed or timed out (its output is quoted), or the AK certificate file is unusable.'),
  TESSERA_ERR_IDENTITY_FILE_UNREADABLE: entry(INTERNAL, 500, 'An identity file (SVID chain, private key or trust bundle) could not be read (the file and the cause are named).'),
  TESSERA_ERR_IDENTITY_FILE_MALFORMED: entry(INVALID_ARGUMENT, 400, 'An identity file holds no usable PEM of the expected kind, or a truncated one (the file and the fault are named).'),
  TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS: entry(FAILED_PRECONDITION, 500, 'The private-key file is readable by others, or by a group this process is not in; like ssh, Tessera refuses it until it is owner-only (chmod 600) or group-readable only by a group of this process (a Kubernetes Secret volume in a pod with fsGroup: root:<fsGroup> 0440).'),
  TESSERA_ERR_IDENTITY_STATE_INVALID: entry(INVALID_ARGUMENT, 400, 'The SVID (or trust bundle) kept in identity.controlPlane.stateDir cannot be used: unreadable, a symbolic link, not owner-only, in a directory others can write to, truncated or malformed, its key does not match, or it is of another trust domain or does not verify under the bootstrap and kept bundles (the file and the fault are named). The proxy attests with its configured evidence instead (a bad kept bundle: the bootstrap bundle alone is trusted).'),
  TESSERA_ERR_IDENTITY_STATE_IN_USE: entry(FAILED_PRECONDITION, 409, 'The identity.controlPlane.stateDir is locked by another running proxy (<stateDir>/proxy.lock): two proxies sharing one would restart as each other. The start fails before it attests; give each proxy a directory of its own.'),
  TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED: entry(FAILED_PRECONDITION, 500, 'The lock of identity.controlPlane.stateDir (<stateDir>/proxy.lock) cannot be taken, and not because another proxy holds it: something there is no lock file of the proxy user\'s (a directory, FIFO, socket or device, a symbolic link, another user\'s file, a file that is no SQLite database), or the state dir is no directory or cannot be used (the path and the fault are named). The start fails before it attests: without the lock a second proxy given the same directory would not be refused. Remove what is named; the proxy never takes it over or removes it. A read-only state dir is not this error: the proxy warns and runs without it.'),
  TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED: entry(INTERNAL, 500, 'The proxy could not write its SVID and key to identity.controlPlane.stateDir (the path and cause are named); it keeps serving, but a restart before the next successful write attests again.'),
  // --- Discovery and routing (control-plane/src/discovery, proxy/src/routing) ---
  TESSERA_ERR_DISCOVERY_BAD_ENDPOINT: entry(INVALID_ARGUMENT, 400, 'An endpoint in a registration, a static endpoints file or a discovery update is malformed (the field is named).'),
  TESSERA_ERR_DISCOVERY_BAD_SERVICE_NAME: entry(INVALID_ARGUMENT, 400, 'A service name is not [a-z0-9.-]+ starting and ending with a letter or digit.'),
  TESSERA_ERR_DISCOVERY_NOT_YOUR_ID: entry(PERMISSION_DENIED, 403, 'A registration names a SPIFFE ID other than the one the caller proved with its SVID; refused and audited.'),
  TESSERA_ERR_DISCOVERY_TOO_MANY: entry(RESOURCE_EXHAUSTED, 429, 'A discovery request names more services or registrations than the control plane accepts from one caller.'),
  TESSERA_ERR_DISCOVERY_RATE_LIMITED: entry(RESOURCE_EXHAUSTED, 429, 'Too many Discovery/Register requests from one SPIFFE ID; the call is ended and the proxy reconnects with backoff.'),
  TESSERA_ERR_STREAM_OPEN_RATE_LIMITED: entry(RESOURCE_EXHAUSTED, 429, 'One SPIFFE ID opened streams of this method (Config/Watch, Discovery/Watch or Register) faster than `limits.maxStreamsPerId` at once, then `limits.streamOpensPerSecond`; the new one is refused and the proxy retries with backoff.'),
  TESSERA_ERR_STREAMS_PER_ID_LIMIT: entry(RESOURCE_EXHAUSTED, 429, 'One SPIFFE ID already holds `limits.maxStreamsPerId` open streams of this method (Config/Watch, Discovery/Watch or Register); the new one is refused and the proxy retries with backoff.'),
  TESSERA_ERR_DISCOVERY_BAD_UPDATE: entry(INTERNAL, 502, 'A Discovery/Watch update from the control plane failed validation (or went back in version) and was refused; the last endpoints stay.'),
  TESSERA_ERR_DISCOVERY_SOURCE_FAILED: entry(UNAVAILABLE, 503, 'An endpoint source (Kubernetes API, static file) could not be read; the registry keeps what it last had from it.'),
  TESSERA_ERR_DISCOVERY_NO_SVID: entry(UNAVAILABLE, 503, 'A proxy cannot open Discovery/Watch or Discovery/Register before it holds an SVID to authenticate with; it retries with backoff.'),
  TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED: entry(PERMISSION_DENIED, 403, 'The caller\'s SPIFFE ID may not serve this service (discovery.serviceIdentities, or by default the service named after its service account); refused and audited.'),
  TESSERA_ERR_DISCOVERY_TOO_MANY_SERVICES: entry(RESOURCE_EXHAUSTED, 429, 'A self-registration names a new service while the caller\'s SPIFFE ID already serves discovery.maxServicesPerIdentity service names (replicas sharing the ID together); that entry is refused and counted, the names it holds stay.'),
  TESSERA_ERR_DISCOVERY_REGISTRY_FULL: entry(RESOURCE_EXHAUSTED, 429, 'A self-registration names a new service while the registry already holds discovery.maxServices services (every source counted); that entry is refused and counted, no registered service is dropped.'),
  TESSERA_ERR_DISCOVERY_OVER_CAP: entry(RESOURCE_EXHAUSTED, 429, 'A Discovery/Watch view of every service holds more than the 5,000 a proxy keeps: the proxy keeps its own listeners\' services, then those it held, then others by name, leaves the rest out (tessera_discovery_services_left_out) and stays connected.'),
  TESSERA_ERR_ROUTING_NO_ENDPOINTS: entry(UNAVAILABLE, 503, 'The service has no ready endpoint (none registered, or none the registry marks ready; with every ready one ejected, requests go to those instead): answered 503 no_endpoints.'),
  TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT: entry(INTERNAL, 502, 'A Config/Watch snapshot from the control plane failed validation and was refused; the previous one stays.'),
  TESSERA_ERR_PROTO_MALFORMED: entry(INVALID_ARGUMENT, 400, 'A gRPC message is not a well-formed protobuf message of its type (a field or number running past the end of the message or of the message holding it, field number 0, a group or an undefined wire type, a known field in another wire type, a string field that is not valid UTF-8); refused before it is decoded.'),
  TESSERA_ERR_PROTO_NOT_FOUND: entry(INTERNAL, 500, 'A gRPC contract (.proto) or a service in it was not found next to the installed code.'),
  TESSERA_ERR_WORKLOAD_API_SOCKET: entry(INTERNAL, 500, 'The SPIFFE Workload API socket could not be bound (the path and cause are named).'),
  TESSERA_ERR_GRPC_SESSIONS_UNREACHABLE: entry(INTERNAL, 500, 'The HTTP/2 server behind a grpc-js connection injector (the control plane\'s gRPC port, the Workload API socket) could not be found, so its connections\' control traffic could not be bounded; the server does not start (a grpc-js other than the pinned version).'),
  TESSERA_ERR_WORKLOAD_API_REQUEST_TOO_LARGE: entry(RESOURCE_EXHAUSTED, 413, 'A Workload API request is larger than the socket reads (20 KiB, or more once decompressed); refused before it is decoded.'),

  // --- Kubernetes: sidecar injection and API-server attestation (control-plane/src/injector, attestation/k8s-*) ---
  TESSERA_ERR_INJECT_BAD_ANNOTATION: entry(INVALID_ARGUMENT, 400, 'A tessera.dev/* pod annotation is malformed (the message names the annotation and the fault).'),
  TESSERA_ERR_INJECT_CONFLICT: entry(FAILED_PRECONDITION, 409, 'The pod already uses a volume, mount path or port that the Tessera sidecar needs (the message names it).'),
  TESSERA_ERR_INJECT_NOT_A_POD: entry(INVALID_ARGUMENT, 400, 'The object given for injection is not a Kubernetes Pod (or pod template) with containers, or `tessera inject` cannot read its manifest as kubectl would: not UTF-8, not valid YAML (a duplicate key, a key that is a collection), a recursive alias, aliases that expand past the bound, lists nested too deep (the document and the fault are named).'),
  TESSERA_ERR_INJECT_NO_BUNDLE: entry(INTERNAL, 500, 'The injector has no trust bundle to hand to the sidecar (unreadable or empty).'),
  TESSERA_ERR_INJECT_BAD_CONFIG: entry(INVALID_ARGUMENT, 400, 'The injector configuration is invalid (the message names the key).'),
  TESSERA_ERR_INJECT_BAD_REVIEW: entry(INVALID_ARGUMENT, 400, 'The webhook request is not a well-formed admission.k8s.io/v1 AdmissionReview: not application/json, not UTF-8 JSON, another version or kind, no request.uid, or a pod CREATE without its object or namespace.'),
  TESSERA_ERR_INJECTOR_START_FAILED: entry(INTERNAL, 500, 'The standalone sidecar injector (`tessera injector`) could not start: its listen address cannot be bound, or a file it needs cannot be used (the address or path and the cause are named).'),
  TESSERA_ERR_INJECT_TOO_LARGE: entry(RESOURCE_EXHAUSTED, 413, 'The review or the pod is beyond what the injector handles, or injecting it would make it so: a review body over 6 MiB, more than 256 containers and init containers, annotations over the 256 KiB Kubernetes limit, or a patch over 256 KiB plus the size of the trust bundle, which every patch carries (the message names the limit).'),
  TESSERA_ERR_K8S_FETCH_FAILED: entry(UNAVAILABLE, 503, 'A request to the Kubernetes API server failed (transport, timeout, HTTP status or oversized answer).'),
  TESSERA_ERR_K8S_DISCOVERY_INVALID: entry(UNAVAILABLE, 503, 'The API server OIDC discovery document or JWKS is malformed, names another issuer, or holds keys whose file would be over the 1 MiB the attestor reads (the last good file is kept).'),
  TESSERA_ERR_K8S_TOKEN_REJECTED: entry(UNAUTHENTICATED, 403, 'Kubernetes did not authenticate the token for the tessera audience, or it is not bound to a live pod.'),

  // --- Control plane: CA, issuance, attestation, config stream, admin (control-plane/src) ---
  TESSERA_ERR_CA_STATE_CORRUPT: entry(INTERNAL, 500, 'The CA state in the data dir is unreadable or inconsistent (a file it names is missing or a key does not match its certificate).'),
  TESSERA_ERR_CA_NO_PREPARED: entry(FAILED_PRECONDITION, 409, 'There is no prepared authority to activate (run `tessera ca prepare` first).'),
  TESSERA_ERR_CA_ALREADY_PREPARED: entry(FAILED_PRECONDITION, 409, 'An authority is already prepared; activate or retire it before preparing another.'),
  TESSERA_ERR_CA_UNKNOWN_AUTHORITY: entry(NOT_FOUND, 404, 'No authority of this CA has that id (see `tessera ca status`).'),
  TESSERA_ERR_CA_AUTHORITY_ACTIVE: entry(FAILED_PRECONDITION, 409, 'The active authority cannot be retired; prepare and activate its successor first.'),
  TESSERA_ERR_CA_AUTHORITY_IN_USE: entry(FAILED_PRECONDITION, 409, 'The authority still has live SVIDs and cannot be removed yet (the count and the latest NotAfter are named).'),
  TESSERA_ERR_CA_KEY_EXPOSED: entry(FAILED_PRECONDITION, 409, 'A CA private key file can be read or written by users the control plane does not run as (the file and its mode are named).'),
  TESSERA_ERR_JWT_KEY_FILES_IGNORED: entry(FAILED_PRECONDITION, 409, 'jwt-signing-key files were found in a writable CA directory, which does not read them: a warning at start (the control plane signs with its own rotated keys; the files are read only from a read-only CA directory, `ca.persistence: fixed`).'),
  TESSERA_ERR_CA_READ_ONLY: entry(FAILED_PRECONDITION, 409, 'The CA directory is read-only (a mounted Secret): the CA cannot be created or changed there (the path is named).'),
  TESSERA_ERR_CA_CONFLICT: entry(ABORTED, 409, 'Another control-plane replica changed the shared CA state first (its version moved on), or this replica is no longer the leader (its fencing term is stale); nothing was changed: reload the state and retry.'),
  TESSERA_ERR_CA_ROOT_OFFLINE: entry(FAILED_PRECONDITION, 409, 'ca.root is offline: this control plane never makes a root (`tessera ca prepare` is refused); a new authority comes from an intermediate its root signed elsewhere (`tessera ca intermediate-csr`, then `tessera ca install-intermediate`).'),
  TESSERA_ERR_CA_NO_INTERMEDIATE: entry(UNAVAILABLE, 503, 'No intermediate can sign: the root is offline and no intermediate signed by it is installed yet, or the signing intermediate\'s chain has ended (the intermediate or its root expired). Nothing is issued until a live one is installed, or an authority with a live root activated (docs/offline-root.md).'),
  TESSERA_ERR_CA_NO_PENDING_REQUEST: entry(FAILED_PRECONDITION, 409, 'No intermediate request is pending: run `tessera ca intermediate-csr` first (its key is the one the installed certificate must certify).'),
  TESSERA_ERR_CA_INTERMEDIATE_MALFORMED: entry(INVALID_ARGUMENT, 400, 'The intermediate or root file is not PEM, a certificate in it does not parse, or it holds more certificates than one intermediate (optionally followed by its root) and one root.'),
  TESSERA_ERR_CA_ROOT_INVALID: entry(INVALID_ARGUMENT, 400, 'The root given with an intermediate cannot anchor it: not a CA, not self-signed, without keyCertSign, a pathlen of 0, an unknown critical extension, or the root of an authority that is retired or whose key is held here.'),
  TESSERA_ERR_CA_INTERMEDIATE_NOT_SIGNED: entry(INVALID_ARGUMENT, 400, 'The intermediate is not signed by the given root (its issuer or signature does not match).'),
  TESSERA_ERR_CA_INTERMEDIATE_KEY_MISMATCH: entry(FAILED_PRECONDITION, 409, 'The intermediate certifies another public key than the pending request\'s (a certificate made from another CSR, or the request was replaced since).'),
  TESSERA_ERR_CA_INTERMEDIATE_NOT_CA: entry(INVALID_ARGUMENT, 400, 'The intermediate cannot sign SVIDs: not a CA (basicConstraints CA:TRUE), no keyUsage keyCertSign, no subjectKeyIdentifier, or an unknown critical extension.'),
  TESSERA_ERR_CA_INTERMEDIATE_WEAK: entry(INVALID_ARGUMENT, 400, 'The intermediate or its root would be refused on every SVID\'s path by Tessera\'s verifier and OpenSSL: the intermediate signed with an algorithm outside ECDSA or RSA with SHA-256, SHA-384 or SHA-512 (SHA-1, MD5), or either one with a key other than RSA of 2048 bits or more (public exponent at most 2^31-1) or EC P-256/P-384.'),
  TESSERA_ERR_CA_INTERMEDIATE_BAD_EKU: entry(INVALID_ARGUMENT, 400, 'The intermediate or its root restricts extendedKeyUsage without both serverAuth and clientAuth (codeSigning only, say): every SVID it certifies would be refused.'),
  TESSERA_ERR_CA_INTERMEDIATE_NAME_CONSTRAINTS: entry(INVALID_ARGUMENT, 400, 'The intermediate or its root has name constraints that exclude this trust domain (spiffe://<trust domain>) or do not permit it, or constraints of a kind Tessera does not evaluate: every SVID it certifies would be refused.'),
  TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME: entry(INVALID_ARGUMENT, 400, 'The intermediate\'s URI SAN is not exactly spiffe://<trust domain> of this control plane, or the root names another trust domain.'),
  TESSERA_ERR_CA_INTERMEDIATE_EXPIRED: entry(INVALID_ARGUMENT, 400, 'The intermediate (or the root) has expired.'),
  TESSERA_ERR_CA_INTERMEDIATE_NOT_YET_VALID: entry(INVALID_ARGUMENT, 400, 'The intermediate (or the root) is not valid yet (its NotBefore is in the future: a clock, or a certificate dated ahead).'),
  TESSERA_ERR_CA_INTERMEDIATE_OUTLIVES_ROOT: entry(INVALID_ARGUMENT, 400, 'The intermediate\'s NotAfter is later than its root\'s: every SVID it signs would stop verifying at the root\'s date while the intermediate still looked valid. Have the root sign it to end no later than the root.'),
  TESSERA_ERR_CP_DATA_DIR: entry(INTERNAL, 500, 'The control plane data dir cannot be created or used (the path and cause are named).'),
  TESSERA_ERR_CP_ALREADY_RUNNING: entry(FAILED_PRECONDITION, 409, 'Another control plane is already serving this data dir (it holds <dataDir>/control-plane.lock, or its admin socket answers).'),
  TESSERA_ERR_CP_STOPPED: entry(CANCELLED, 503, 'The control plane was asked to stop (SIGTERM, SIGINT) before it finished starting (an offline-root control plane waiting for its first intermediate); it exits 0.'),
  TESSERA_ERR_CP_LISTEN_FAILED: entry(INTERNAL, 500, 'The control plane could not listen on an address (the address and cause are named).'),
  TESSERA_ERR_CP_START_FAILED: entry(INTERNAL, 500, 'The control plane could not start: a file or directory it needs cannot be used (the path and cause are named).'),
  TESSERA_ERR_CP_UNREACHABLE: entry(UNAVAILABLE, 503, 'The control plane admin socket in the data dir did not answer (is the control plane running?).'),
  TESSERA_ERR_STORE_UNAVAILABLE: entry(UNAVAILABLE, 503, 'The control plane\'s database (PostgreSQL) cannot be reached, refused the login, timed out, or lost the connection: what needs it (issuance, operator commands) is refused until it is back (the database is named, never its password).'),
  TESSERA_ERR_STORE_FULL: entry(UNAVAILABLE, 503, 'The control plane\'s store cannot be written: the disk holding it is full (SQLite SQLITE_FULL, ENOSPC on audit.log, PostgreSQL disk_full). Nothing was issued or changed; /ready answers 503 until a write succeeds again, which happens by itself once there is space.'),
  TESSERA_ERR_STORE_READ_ONLY: entry(UNAVAILABLE, 503, 'The control plane\'s store cannot be written: its SQLite file, audit.log or the data dir became read-only or not writable by the process (SQLITE_READONLY, EROFS, EACCES), or PostgreSQL refuses writes (a standby, default_transaction_read_only). /ready answers 503 until a write succeeds again.'),
  TESSERA_ERR_STORE_IO: entry(UNAVAILABLE, 503, 'Reading or writing the control plane\'s store failed in the disk or file system (SQLITE_IOERR, SQLITE_CANTOPEN, EIO, PostgreSQL io_error). /ready answers 503 until a write succeeds again.'),
  TESSERA_ERR_STORE_CORRUPT: entry(INTERNAL, 500, 'The control plane\'s store is damaged: SQLite finds tessera.db malformed (SQLITE_CORRUPT, SQLITE_NOTADB) or PostgreSQL reports corrupted data. What needs the damaged part is refused and /ready answers 503 until the control plane is restarted; restore the data dir from a backup.'),
  TESSERA_ERR_STORE_FAILED: entry(INTERNAL, 500, 'The control plane\'s store refused an operation for another reason (the SQLite result is named: busy past its 2 s timeout, out of memory, a constraint); nothing was changed.'),
  TESSERA_ERR_CP_ADMIN_BAD_ANSWER: entry(INTERNAL, 502, 'The control plane admin socket answered something the CLI cannot use: more than 64 MiB, not JSON, an error code this CLI does not know, or a result of the wrong shape (what was wrong is named).'),
  TESSERA_ERR_CP_ADMIN_BAD_REQUEST: entry(INVALID_ARGUMENT, 400, 'An operator request to the control plane is malformed (the field is named).'),
  TESSERA_ERR_ISSUANCE_BAD_REQUEST: entry(INVALID_ARGUMENT, 400, 'The request is malformed: not a valid message of the method\'s type (a SignSvid request without a CSR, for one), a compressed message that does not inflate or uses an unsupported encoding, or a second message, or none, on a single-request method.'),
  TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE: entry(RESOURCE_EXHAUSTED, 413, 'The request is larger than the control plane accepts.'),
  TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN: entry(INVALID_ARGUMENT, 400, 'The CSR asks for a name other than the attested SPIFFE ID (a foreign or extra SAN).'),
  TESSERA_ERR_ISSUANCE_CSR_REQUESTS_CA: entry(INVALID_ARGUMENT, 400, 'The CSR asks for CA rights (basicConstraints cA or keyUsage keyCertSign/cRLSign).'),
  TESSERA_ERR_ISSUANCE_RESERVED_ID: entry(PERMISSION_DENIED, 403, 'The SPIFFE ID cannot name a workload here: the bare trust-domain ID, an ID outside the control plane\'s trust domain, or the control plane\'s own ID.'),
  TESSERA_ERR_ISSUANCE_RATE_LIMITED: entry(RESOURCE_EXHAUSTED, 429, 'Too many SVID requests for this identity; retry later.'),
  TESSERA_ERR_ISSUANCE_CALLER_GONE: entry(CANCELLED, 499, 'The caller gave up on its SVID request (cancelled, or its deadline passed) before the SVID was committed: nothing was recorded and a join token it sent is still usable for its retry.'),
  TESSERA_ERR_ISSUANCE_BUSY: entry(UNAVAILABLE, 503, 'Too many CSRs with RSA keys are waiting for the key check (more than 256 queued); the request is refused before it is judged, nothing is recorded, and the proxy retries with backoff.'),
  TESSERA_ERR_ISSUANCE_INTERNAL: entry(INTERNAL, 500, 'The control plane could not sign (an internal fault; nothing was issued).'),
  TESSERA_ERR_ATTESTATION_NO_EVIDENCE: entry(UNAUTHENTICATED, 403, 'The request carries no attestation evidence and no valid client SVID.'),
  TESSERA_ERR_ATTESTATION_DISABLED: entry(UNAUTHENTICATED, 403, 'The attestor for this kind of evidence is not enabled on the control plane.'),
  TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN: entry(UNAUTHENTICATED, 403, 'The join token is not known.'),
  TESSERA_ERR_ATTESTATION_TOKEN_USED: entry(UNAUTHENTICATED, 403, 'The join token was already used (join tokens are single-use).'),
  TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED: entry(UNAUTHENTICATED, 403, 'The join token has expired.'),
  TESSERA_ERR_ATTESTATION_TOKEN_REVOKED: entry(UNAUTHENTICATED, 403, 'The join token was revoked by the operator (`tessera revoke token`).'),
  TESSERA_ERR_ATTESTATION_JWT_INVALID: entry(UNAUTHENTICATED, 403, 'The Kubernetes service-account token is malformed (a member name repeated in one object of its header or claims included) or its signature does not verify against the JWKS.'),
  TESSERA_ERR_ATTESTATION_JWT_UNKNOWN_KEY: entry(UNAUTHENTICATED, 403, 'The Kubernetes service-account token names a signing key (`kid` and `alg`) the JWKS does not hold; with `attestors.kubernetes.apiServer`, not even after the keys were fetched again (at most one such fetch per 5 s): a token of another cluster or issuer, or a key the API server does not publish. Keys that could not be fetched give the fetch\'s code instead (`TESSERA_ERR_K8S_FETCH_FAILED`, UNAVAILABLE).'),
  TESSERA_ERR_ATTESTATION_JWT_ISSUER: entry(UNAUTHENTICATED, 403, 'The Kubernetes service-account token names another issuer.'),
  TESSERA_ERR_ATTESTATION_JWT_AUDIENCE: entry(UNAUTHENTICATED, 403, 'The Kubernetes service-account token is not for the configured audience.'),
  TESSERA_ERR_ATTESTATION_JWT_EXPIRED: entry(UNAUTHENTICATED, 403, 'The Kubernetes service-account token has expired or is not valid yet.'),
  TESSERA_ERR_ATTESTATION_JWT_CLAIMS: entry(UNAUTHENTICATED, 403, 'The Kubernetes service-account token lacks a valid namespace and service-account claim, has a claim of the wrong JSON type, or was issued in the future.'),
  TESSERA_ERR_ATTESTATION_JWKS_UNREADABLE: entry(UNAVAILABLE, 503, 'The configured JWKS file cannot be read or is not a JWK set.'),
  TESSERA_ERR_ATTESTATION_SVID_INVALID: entry(UNAUTHENTICATED, 403, 'The client SVID presented for renewal or Config/Watch does not verify (expired, unknown authority, other trust domain).'),
  TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED: entry(UNAUTHENTICATED, 403, 'The TPM evidence does not parse: the quote is not a TPM-generated TPMS_ATTEST of type quote, or it or the TPMT_SIGNATURE is truncated, oversized, has trailing bytes or an unsupported algorithm (the field is named in the audit line).'),
  TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN: entry(UNAUTHENTICATED, 403, 'The nonce of the TPM evidence was not issued by this control plane (its seal does not verify, or it is not a TpmChallenge nonce at all).'),
  TESSERA_ERR_ATTESTATION_TPM_NONCE_EXPIRED: entry(UNAUTHENTICATED, 403, 'The nonce of the TPM evidence has expired (`attestors.tpm.nonceTtl`); ask TpmChallenge for a new one.'),
  TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED: entry(UNAUTHENTICATED, 403, 'The nonce of the TPM evidence was spent already (each TpmChallenge nonce attests once): a replayed quote.'),
  TESSERA_ERR_ATTESTATION_TPM_NONCE_MISMATCH: entry(UNAUTHENTICATED, 403, 'The quote\'s qualifying data is not SHA-256(nonce || the CSR\'s public key): the quote was made for another nonce, or binds another key than the CSR\'s.'),
  TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE: entry(UNAUTHENTICATED, 403, 'The quote\'s signature does not verify with the key of the attestation-key certificate (tampered quote, another key, or a SHA-1 signature).'),
  TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: entry(UNAUTHENTICATED, 403, 'The attestation-key (AK) certificate is not certified by a CA of `attestors.tpm.caFile`, does not parse, is not an end-entity signing certificate, or its path breaks a rule peer chains keep (pathLenConstraint, SHA-2 signatures, key strength, nothing unrelated sent).'),
  TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY: entry(UNAUTHENTICATED, 403, 'With `attestors.tpm.pcrPolicy`, the attestation-key certificate does not say it certifies an attestation key: its extendedKeyUsage lacks TCG\'s tcg-kp-AIKCertificate (2.23.133.8.3), or a CA on its path restricts purposes without it (the audit line says which). A key certified without it, such as an IEEE 802.1AR DevID, may be unrestricted and sign a quote of PCR values it made up; certify an AK with that purpose.'),
  TESSERA_ERR_ATTESTATION_TPM_AK_EXPIRED: entry(UNAUTHENTICATED, 403, 'A certificate on the attestation key\'s chain (the AK certificate or its CA) has expired or is not valid yet.'),
  TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH: entry(UNAUTHENTICATED, 403, 'The quote does not select exactly the PCRs of `attestors.tpm.pcrPolicy`, or their values differ from the policy.'),
  TESSERA_ERR_ATTESTATION_TPM_NO_ID: entry(UNAUTHENTICATED, 403, 'No SPIFFE ID can be made from the attestation-key certificate: `attestors.tpm.idTemplate` uses {cn} and the subject has no single CN that is a SPIFFE path segment.'),
  TESSERA_ERR_BREAK_GLASS_INVALID: entry(INVALID_ARGUMENT, 400, 'A break-glass request is invalid (the field is named: pattern, duration or reason).'),
  TESSERA_ERR_REVOCATION_ID_BANNED: entry(PERMISSION_DENIED, 409, 'The SPIFFE ID is banned by the operator (`tessera revoke id`): no SVID is issued or renewed for it and proxies refuse it until the ban is lifted.'),
  TESSERA_ERR_REVOCATION_SERIAL_BANNED: entry(PERMISSION_DENIED, 409, 'The SVID with this serial is banned by the operator (`tessera revoke serial`): it cannot renew itself and proxies refuse it.'),
  TESSERA_ERR_REVOCATION_INVALID: entry(INVALID_ARGUMENT, 400, 'A revocation request is invalid (the field is named: SPIFFE ID, serial, token or reason; the control plane\'s own ID cannot be banned).'),
  TESSERA_ERR_REVOCATION_NOT_FOUND: entry(NOT_FOUND, 404, 'Nothing to revoke or lift: no such ban, or no join token with that value or id.'),
  TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL: entry(NOT_FOUND, 404, 'No SVID in the inventory has this serial (cut or mistyped?), so nothing is banned: give the whole serial as `tessera certs list` or a proxy\'s /certs print it, or `--force` for a certificate this control plane did not issue. An SVID expired longer than `inventory.keep` ago is forgotten too: to cut off a workload whose old key may be compromised, ban its SPIFFE ID.'),
  TESSERA_ERR_REVOCATION_TOKEN_USED: entry(FAILED_PRECONDITION, 409, 'The join token was already used, so revoking it changes nothing; ban the SPIFFE ID it attested instead.'),
  TESSERA_ERR_REPORT_INVALID: entry(INVALID_ARGUMENT, 400, 'A proxy report (Config/Report) is malformed or over its bounds: more than 256 listeners or denial rows, a duplicate, a bad listener name, serial, policy, outcome, caller, instance or time (the field is named); refused whole.'),
  TESSERA_ERR_REPORT_RATE_LIMITED: entry(RESOURCE_EXHAUSTED, 429, 'Too many reports from one SPIFFE ID (all its proxy instances together); the report was dropped (the proxy sends the next on its interval).'),
  TESSERA_ERR_REPORT_NOT_STORED: entry(UNAVAILABLE, 503, 'The control plane could not store a proxy report (its store failed); the proxy sends the next on its interval.'),

  // --- Proxy observability: access log and admin listener (proxy/src/telemetry, proxy/src/admin) ---
  TESSERA_ERR_ACCESS_LOG_UNWRITABLE: entry(INTERNAL, 500, 'The access log file could not be opened for appending (the path and cause are named).'),
  TESSERA_ERR_ADMIN_LISTEN_FAILED: entry(INTERNAL, 500, 'The proxy admin listener could not listen on its address (the address and cause are named).'),
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The catalogue text of a code. */
export function errorMessage(code: ErrorCode): string {
  return ERROR_CATALOGUE[code].message;
}

/** The HTTP status to answer `e` with: its code's status, 500 for anything that is not a TesseraError. */
export function errorHttpStatus(e: unknown): number {
  return e instanceof TesseraError ? ERROR_CATALOGUE[e.code].http : 500;
}

export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message?: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message ?? ERROR_CATALOGUE[code].message, options);
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
