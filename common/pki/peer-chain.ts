// The DER chain a TLS peer presented, leaf first, walked from Node's detailed peer certificate
// (`getPeerCertificate(true)`): one walk for the proxy's verifiers and the control plane's gRPC server.

/** The part of Node's DetailedPeerCertificate the walk reads (structural, so common/ needs no node:tls). */
export interface LinkedCertificate {
  readonly raw?: Buffer;
  readonly issuerCertificate?: LinkedCertificate;
}

/** At most 10 certificates; a self-issued root links to itself, so the walk stops at the first repeat. */
export function peerChainDer(cert: LinkedCertificate | object | undefined): Buffer[] {
  const out: Buffer[] = [];
  let c = cert as LinkedCertificate | undefined;
  while (c?.raw && out.length < 10 && !out.some((b) => b.equals(c!.raw!))) {
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}
