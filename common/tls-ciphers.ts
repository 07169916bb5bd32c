// The cipher suites every Tessera TLS server and client offers: TLS 1.3's (all AEAD), and for TLS 1.2 only
// forward-secret AEAD suites. Node's default list also has CBC suites with SHA-1 and SHA-2 MACs on TLS 1.2.

const TLS12 = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'];
const TLS13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** OpenSSL cipher string for node:tls `ciphers`. */
export const TLS_CIPHERS = [...TLS13, ...TLS12].join(':');
