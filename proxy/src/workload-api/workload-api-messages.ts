// What the SPIFFE Workload API serves, and how it becomes wire messages: complete state in every message
// (X509SVIDResponse, X509BundlesResponse), DER concatenated, trust domains keyed by their SPIFFE ID.
import type { X509BundlesResponseMsg, X509SvidResponseMsg } from '../../../common/contract/spiffe-workload.js';

/** The identity the workload sees: its SVID, key and every trust bundle the proxy holds. */
export interface WorkloadIdentity {
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** DER certificates, leaf first. */
  readonly chainDer: readonly Uint8Array[];
  /** DER PKCS#8 private key (handed to the local workload only, as the Workload API specifies). */
  readonly keyPkcs8Der: Uint8Array;
  /** Trust domain name → its authorities, DER. Holds the SVID's own trust domain and any federated ones. */
  readonly bundles: ReadonlyMap<string, readonly Uint8Array[]>;
}

/** A readable, observable view of the current identity (one writer elsewhere, many readers here). */
export interface WorkloadIdentityFeed {
  current(): WorkloadIdentity | undefined;
  /** Called after every swap (new SVID or new bundles); returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

const concat = (ders: readonly Uint8Array[]): Buffer => Buffer.concat(ders.map((d) => Buffer.from(d)));
const tdId = (td: string): string => `spiffe://${td}`;

export function x509SvidResponse(identity: WorkloadIdentity): X509SvidResponseMsg {
  const federated: Record<string, Buffer> = {};
  for (const [td, cas] of identity.bundles) if (td !== identity.trustDomain) federated[tdId(td)] = concat(cas);
  return {
    svids: [
      {
        spiffe_id: identity.spiffeId,
        x509_svid: concat(identity.chainDer),
        x509_svid_key: Buffer.from(identity.keyPkcs8Der),
        bundle: concat(identity.bundles.get(identity.trustDomain) ?? []),
        hint: '',
      },
    ],
    crl: [],
    federated_bundles: federated,
  };
}

export function x509BundlesResponse(identity: WorkloadIdentity): X509BundlesResponseMsg {
  const bundles: Record<string, Buffer> = {};
  for (const [td, cas] of identity.bundles) bundles[tdId(td)] = concat(cas);
  return { crl: [], bundles };
}
