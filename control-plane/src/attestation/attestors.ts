// The attestor factory: which ways of proving identity this control plane accepts, built from the config — join
// tokens, Kubernetes service-account JWTs (local JWKS file, refreshed from the API server — retried on its backoff
// after a failure, fetched again for a token naming an unknown key — optionally checked by TokenReview), TPM quotes (nonces shared by the replicas through the store) and SVID renewal (a caller presenting
// a live SVID of this trust domain).

import type { Clock } from '../../../common/clock.js';
import { TesseraError, describeError } from '../../../common/errors.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { readNamedFileSync } from '../../../shared-io/read-named-file.js';
import type { ControlPlaneConfig } from '../config/cp-config.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { NonceStore, TokenStore } from '../store/store-contract.js';
import { JoinTokenAttestor } from './join-token-attestor.js';
import { createHttpsFetch } from '../../../shared-io/https-fetch.js';
import { K8sAttestation, type KubernetesAttestor } from './k8s-attestation.js';
import { JwksRefresher } from './k8s-jwks-refresher.js';
import { K8sJwtAttestor } from './k8s-jwt-attestor.js';
import { SvidAttestor } from './svid-attestor.js';
import type { TpmAttestor } from './tpm-attestor.js';
import { openTpmAttestor } from './tpm-shared-nonces.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';
import { LastGoodText } from '../../../shared-io/last-good-text.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';

export interface AttestorDeps {
  readonly clock: Clock;
  /** Where the JWKS refresh is scheduled (default the real timers). */
  readonly timers?: Timers;
  readonly log: Pick<ControlPlaneLogger, 'info' | 'warn'>;
  readonly tokens: TokenStore;
  /** TPM nonces (seal key, spent record) in the shared store; required with attestors.tpm. main.ts: store.nonces. */
  readonly nonces?: NonceStore;
  /** The trust bundle renewing callers' SVIDs are verified against (follows CA changes). */
  readonly bundle: () => TrustBundle;
}

export interface Attestors {
  readonly joinTokens?: JoinTokenAttestor;
  readonly kubernetes?: KubernetesAttestor;
  readonly tpm?: TpmAttestor;
  readonly svids: SvidAttestor;
  /** Stops background work (the JWKS refresh); idempotent. */
  stop(): void;
}

export async function createAttestors(config: Pick<ControlPlaneConfig, 'attestors' | 'trustDomain'>, deps: AttestorDeps): Promise<Attestors> {
  const { clock, log } = deps;
  // Before the Kubernetes refresher starts: a bad caFile fails the start with nothing to stop.
  const tpm = config.attestors.tpm ? await tpmAttestor(config.attestors.tpm, config.trustDomain, deps) : undefined;
  const k8sConfig = config.attestors.kubernetes;
  const k8s = k8sConfig ? await kubernetesAttestor(k8sConfig, config.trustDomain, deps) : undefined;
  try {
    k8s?.attestor.check();
  } catch (e) {
    // The file may be provisioned after start (it is re-read when it changes): warn, attest nothing until then.
    log.warn({ err: describeError(e) }, 'kubernetes attestor: JWKS not usable yet');
  }
  return {
    ...(config.attestors.joinToken.enabled ? { joinTokens: new JoinTokenAttestor(deps.tokens, clock) } : {}),
    ...(k8s ? { kubernetes: k8s.attestor } : {}),
    ...(tpm ? { tpm } : {}),
    svids: new SvidAttestor(deps.bundle, clock),
    stop: () => k8s?.stop(),
  };
}

function tpmAttestor(tpm: NonNullable<ControlPlaneConfig['attestors']['tpm']>, trustDomain: ControlPlaneConfig['trustDomain'], { clock, nonces }: AttestorDeps): Promise<TpmAttestor> {
  // A per-process key and ledger would break replicas behind one address (a challenge from one, SignSvid on another).
  if (!nonces) throw new TesseraError('TESSERA_ERR_CP_START_FAILED', 'attestors.tpm: no shared nonce store was wired (createAttestors needs `nonces`)');
  return openTpmAttestor(tpm, { trustDomain, clock, nonces });
}

type K8sConfig = NonNullable<ControlPlaneConfig['attestors']['kubernetes']>;

/** The most the control plane's own token file may hold (a projected token is a few KiB). */
const MAX_TOKEN_FILE_BYTES = 64 << 10;

async function kubernetesAttestor(k8s: K8sConfig, td: ControlPlaneConfig['trustDomain'], { clock, timers, log }: AttestorDeps): Promise<{ attestor: KubernetesAttestor; stop(): void }> {
  const jwtOptions = { trustDomain: td, issuer: k8s.issuer, audience: k8s.audience, jwksFile: k8s.jwksFile, clock };
  const api = k8s.apiServer;
  if (!api) return { attestor: new K8sAttestation(new K8sJwtAttestor(jwtOptions), undefined, log), stop: () => {} };
  // The cluster CA and the control plane's own token are mounted by the kubelet and both change (the token rotates,
  // the CA bundle with a cluster CA rotation): each is read at each call, as discovery reads them. The CA must be
  // readable at start; later, a file gone or emptied mid-swap leaves the last one read in use, and a file gone for
  // good is told once (with the cause), as is its return: the old CA may be in use long after the cluster's changed.
  const readCa = () => readNamedFileSync({ path: api.caFile, what: 'attestors.kubernetes.apiServer.caFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' }).toString('utf8');
  const clusterCa = new LastGoodText(readCa(), readCa, {
    stale: (cause) => log.warn({ file: api.caFile, err: cause }, 'kubernetes API CA file cannot be read; the last one read stays in use until it can'),
    fresh: () => log.info({ file: api.caFile }, 'kubernetes API CA file read again'),
  });
  const fetch = createHttpsFetch({ caPem: () => clusterCa.read(), code: 'TESSERA_ERR_K8S_FETCH_FAILED', timers: timers ?? realTimers });
  const callerToken = () => readSmallFile(api.tokenFile, MAX_TOKEN_FILE_BYTES).trim();
  // Told once, with the cause, and once more when it can be read again: the refresh's 401 alone would not say why.
  let tokenUnreadable = false;
  const refresher = new JwksRefresher({
    apiServer: api.url,
    fetch,
    bearerToken: () => {
      try {
        const token = callerToken();
        if (tokenUnreadable) log.info({ file: api.tokenFile }, 'kubernetes token file read again');
        tokenUnreadable = false;
        return token;
      } catch (e) {
        if (!tokenUnreadable) log.warn({ file: api.tokenFile, err: (e as Error).message }, 'kubernetes token file cannot be read; the JWKS is fetched without it');
        tokenUnreadable = true;
        return undefined;
      }
    },
    issuer: k8s.issuer,
    file: k8s.jwksFile,
    intervalMs: api.jwksRefreshMs,
    clock,
    timers: timers ?? realTimers,
    onResult: ({ ok, cause, detail, retryInMs }) =>
      ok ? log.info({ detail, cause }, 'kubernetes JWKS refreshed') : log.warn({ err: detail, cause, ...(retryInMs !== undefined ? { retryInMs } : {}) }, 'kubernetes JWKS refresh failed; the last keys stay, retrying'),
  });
  const jwt = new K8sJwtAttestor({ ...jwtOptions, refetchKeys: () => refresher.refetch() });
  // A failed first fetch does not hold the start: it is logged and retried on the backoff.
  await refresher.start();
  const review = api.tokenReview ? { apiServer: api.url, fetch, callerToken, audience: k8s.audience } : undefined;
  return { attestor: new K8sAttestation(jwt, review, log), stop: () => refresher.stop() };
}
