// Whether a certificate chain we would serve fits in a TLS handshake: peers refuse a Certificate message past a
// bound (OpenSSL's max_cert_list, 100 KiB by default: "excessive message size"), so a chain past it, installed by a
// reload, broke every new handshake while the old one still served. Duplicates are refused too: a chain names each
// certificate once, and a repeated one is how a file grows past the bound by mistake.

/** DER bytes a served chain may hold: room under OpenSSL's 100 KiB with the message's own framing to spare. */
export const MAX_CHAIN_DER_BYTES = 64 * 1024;

/** Why the chain (DER, leaf first) must not be served, or null. */
export function chainSizeFault(ders: readonly Uint8Array[]): string | null {
  let total = 0;
  const seen = new Set<string>();
  for (let i = 0; i < ders.length; i++) {
    const der = ders[i]!;
    total += der.length;
    const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
    if (seen.has(key)) return `holds certificate #${i + 1} twice`;
    seen.add(key);
  }
  return total > MAX_CHAIN_DER_BYTES ? `holds ${total} bytes of certificates, over the ${MAX_CHAIN_DER_BYTES} a TLS peer is sure to accept` : null;
}
