// The identity store seen as the Workload API's feed: the current snapshot in wire terms (DER), and its swaps.
import type { IdentityStore } from '../identity/identity-store.js';
import type { WorkloadIdentityFeed } from './workload-api-messages.js';

export function identityFeed(identity: IdentityStore): WorkloadIdentityFeed {
  return {
    current: () => {
      const s = identity.current;
      if (!s) return undefined;
      const bundles = new Map(s.bundles.bundles().map((b) => [b.trustDomain.name, b.authorities.map((a) => a.raw)] as const));
      return { spiffeId: s.id.toString(), trustDomain: s.id.trustDomain.name, chainDer: s.chain.map((c) => c.raw), keyPkcs8Der: s.key.privateKey.export({ type: 'pkcs8', format: 'der' }), bundles };
    },
    subscribe: (l) => identity.subscribe(() => l()),
  };
}
