// One GET of a federated trust domain's bundle endpoint over HTTPS, per the SPIFFE bundle endpoint profiles:
// `https_web` checks the server by Web PKI (system roots, or a configured CA file) and its host name;
// `https_spiffe` checks the server as an X.509-SVID of the configured SPIFFE ID, chained to bundles we already
// hold (the bootstrap bundle, then the last good one) — never by host name. Bounded in time and size.
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { TesseraError } from '../../../common/errors.js';
import { peerChainDer } from '../../../common/pki/peer-chain.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import { createHttpsFetch } from '../../../shared-io/https-fetch.js';
import type { Timers } from '../../../shared-io/timers.js';

/** A bundle is a few kB; anything far larger is not one. */
export const MAX_BUNDLE_BYTES = 1 << 20;

export type EndpointTrust =
  | { readonly profile: 'https_web'; readonly caPem?: string }
  | { readonly profile: 'https_spiffe'; readonly endpointId: SpiffeId; readonly anchors: TrustBundleSet; readonly nowMs: number };

function tlsOf(trust: EndpointTrust): { caPem: string | undefined; tlsOptions?: Record<string, unknown> } {
  if (trust.profile === 'https_web') return { caPem: trust.caPem };
  return {
    // OpenSSL builds the chain to one of the held roots; the SVID rules and the ID are checked here.
    caPem: trust.anchors.allAuthoritiesPem().join(''),
    tlsOptions: {
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const chain = peerChainDer(cert as DetailedPeerCertificate).map((d) => new X509Certificate(d));
        const r = verifyX509Svid(chain, trust.anchors, { nowMs: trust.nowMs, expectedId: trust.endpointId });
        return r.ok ? undefined : new Error(`the endpoint is not ${trust.endpointId} (${r.code})`);
      },
    },
  };
}

/** The document's text; throws TESSERA_ERR_FEDERATION_FETCH_FAILED with what went wrong. */
export async function fetchBundleDocument(url: string, trust: EndpointTrust, timeoutMs: number, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>): Promise<string> {
  const fetch = createHttpsFetch({ ...tlsOf(trust), timeoutMs, maxBodyBytes: MAX_BUNDLE_BYTES, code: 'TESSERA_ERR_FEDERATION_FETCH_FAILED', timers });
  const res = await fetch(url, { method: 'GET' });
  if (res.status !== 200) throw new TesseraError('TESSERA_ERR_FEDERATION_FETCH_FAILED', `${url}: HTTP ${res.status}`);
  return res.body;
}
