// gRPC channel credentials for talking to the control plane: TLS verified against the trust bundle, secure naming
// of the control plane's own SVID (spiffe://<td>/tessera/control-plane) instead of a hostname check, and the
// proxy's current SVID as client certificate when renewing or watching (mTLS).
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import { privateKeyPem } from '../../../common/pki/keys.js';
import { peerChainDer } from '../../../common/pki/peer-chain.js';
import { encodePem } from '../../../common/pki/pem.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { controlPlaneIdString } from '../../../common/spiffe/workload-id.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import type { IssuedSvid } from './control-plane-svid-source.js';

/** The SPIFFE ID the control plane serves with, in a given trust domain. */
export function controlPlaneId(td: TrustDomain): SpiffeId {
  return SpiffeId.parse(controlPlaneIdString(td));
}

/** SNI/authority sent instead of an IP (an IP as SNI is deprecated and meaningless for SVIDs). */
export const CONTROL_PLANE_AUTHORITY = 'tessera-control-plane';

export function channelOptions(): grpc.ChannelOptions {
  return {
    'grpc.ssl_target_name_override': CONTROL_PLANE_AUTHORITY,
    'grpc.default_authority': CONTROL_PLANE_AUTHORITY,
    // Keep the watch stream's connection honest through idle NATs and detect a dead peer.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

export interface ControlPlaneCredentialOptions {
  /** Authorities to verify the control plane with (bootstrap file, then the live bundle). */
  readonly bundles: TrustBundleSet;
  /** Trust domain whose control-plane ID the server must present. */
  readonly trustDomain: TrustDomain;
  /** Present this SVID as client certificate (renewal, watch); absent for attestation. */
  readonly clientSvid?: IssuedSvid;
  readonly clock: Clock;
}

export function controlPlaneCredentials(opts: ControlPlaneCredentialOptions): grpc.ChannelCredentials {
  const expected = controlPlaneId(opts.trustDomain);
  const roots = Buffer.from(opts.bundles.allAuthoritiesPem().join(''));
  const key = opts.clientSvid ? Buffer.from(privateKeyPem(opts.clientSvid.key)) : null;
  const chain = opts.clientSvid ? Buffer.from(opts.clientSvid.chain.map((c) => encodePem('CERTIFICATE', c.raw)).join('')) : null;
  return grpc.credentials.createSsl(roots, key, chain, {
    // node:tls has verified the chain against all roots; check it against the bundle of the ID's own trust
    // domain and require exactly the control plane's ID (secure naming).
    checkServerIdentity: (_host, cert) => {
      const result = verifyX509Svid(peerChainDer(cert), opts.bundles, { nowMs: opts.clock.nowMs(), expectedId: expected });
      return result.ok ? undefined : new Error(`control plane identity rejected: ${result.message}`);
    },
  });
}
