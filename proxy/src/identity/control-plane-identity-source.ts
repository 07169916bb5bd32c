// The control-plane identity source: attestation and renewal (control-plane-svid-source.ts) and the Config/Watch
// stream (bundles, policies, bans) over one client, assembled into the identity store. Loaded only for
// identity.controlPlane, so a proxy on file identities does not load gRPC.
import { TesseraError } from '../../../common/errors.js';
import { TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { certificatesOf, readNamedFileSync } from '../../../shared-io/read-named-file.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import { evidenceProvider } from './attestation-evidence.js';
import { installIdentity } from './bundle-merge.js';
import { ConfigWatch } from './config-watch-client.js';
import { ControlPlaneClient, type MintedJwtSvid } from './control-plane-client.js';
import { ControlPlaneSvidSource, type IssuedSvid } from './control-plane-svid-source.js';
import type { IdentitySource, IdentitySourceDeps } from './identity-source.js';

type ControlPlaneIdentity = Extract<ProxyConfig['identity'], { kind: 'controlPlane' }>;

/** The trust domain of the control plane: from its bundle's CA certificates (they carry spiffe://<td> as URI SAN). */
function trustDomainOfBundle(pem: string, file: string): TrustDomain {
  // Parsed as a named file: a malformed block is a coded error naming it, not a bare parser message.
  for (const cert of certificatesOf({ path: file, what: 'identity.controlPlane.bundleFile' }, Buffer.from(pem))) {
    const san = cert.subjectAltName ?? '';
    const m = /URI:spiffe:\/\/([^/,\s]+)/.exec(san);
    if (m) return TrustDomain.parse(m[1]!);
  }
  throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}: no CA certificate names its trust domain (URI SAN spiffe://<td>)`, { file });
}

export class ControlPlaneIdentitySource implements IdentitySource {
  readonly deliversPolicies = true;
  readonly #d: IdentitySourceDeps;
  readonly #bootstrap: TrustBundleSet;
  readonly #client: ControlPlaneClient;
  readonly #svids: ControlPlaneSvidSource;
  readonly #watch: ConfigWatch;
  /** The SVID and the watched bundles last accepted: the identity installed is made of both. */
  #svid: IssuedSvid | undefined;
  #watched: TrustBundleSet | undefined;
  #ready: Promise<void> | undefined;

  constructor(cp: ControlPlaneIdentity, defaultAction: 'deny' | 'allow', deps: IdentitySourceDeps) {
    this.#d = deps;
    const { store, metrics, log, clock } = deps;
    const bootstrapPem = readNamedFileSync({ path: cp.bundleFile, what: 'identity.controlPlane.bundleFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' }).toString('utf8');
    const td = cp.trustDomain ? TrustDomain.parse(cp.trustDomain) : trustDomainOfBundle(bootstrapPem, cp.bundleFile);
    this.#bootstrap = new TrustBundleSet([TrustBundle.parse(td, bootstrapPem)]);
    this.#client = new ControlPlaneClient({ address: cp.address, trustDomain: td, bundles: () => store.current?.bundles ?? this.#watched ?? this.#bootstrap, clock });
    this.#svids = new ControlPlaneSvidSource({
      signer: this.#client,
      evidence: evidenceProvider({ ...(cp.joinToken ? { joinToken: cp.joinToken } : {}), ...(cp.joinTokenFile ? { joinTokenFile: cp.joinTokenFile } : {}), ...(cp.kubernetesTokenFile ? { kubernetesTokenFile: cp.kubernetesTokenFile } : {}) }),
      install: (s) => this.#accept(s, this.#watched),
      trustDomain: td,
      clock,
      onEvent: (e) => {
        metrics.svidRotation(e.result);
        if (e.result === 'success') log.info({ kind: e.kind, serial: e.serial, notAfter: e.notAfterMs ? new Date(e.notAfterMs).toISOString() : undefined }, 'SVID installed');
        else log.warn({ kind: e.kind, result: e.result, err: e.error }, 'SVID request failed');
      },
    });
    this.#watch = new ConfigWatch({
      open: (current, cb) => this.#client.watch(current, cb),
      currentSvid: () => this.#svids.current,
      defaultAction,
      apply: (u) => {
        try {
          this.#accept(this.#svid, u.bundles);
        } catch (e) {
          metrics.trustBundleUpdate('refused');
          throw e;
        }
        metrics.trustBundleUpdate('success');
        deps.policies.setSnapshot(u.policies);
        metrics.policyUpdate('success');
        deps.denyList.set(u.denyList);
        deps.jwtBundles.set(u.jwtBundles);
      },
      onEvent: (e) => {
        if (e.kind === 'refused') {
          metrics.policyUpdate('refused');
          log.warn({ version: e.version, err: e.error }, 'config snapshot refused; the previous one stays');
        } else if (e.kind === 'disconnected') log.warn({ err: e.error, retryInMs: e.retryInMs }, 'config stream disconnected');
        else log.info({ version: e.version }, 'config snapshot applied');
      },
    });
  }

  /** Attestation starts at once; the config stream opens with the first SVID. */
  start(): void {
    this.#svids.start();
    const firstIdentity = this.#svids.firstSvid().then(() => this.#watch.start());
    this.#ready = firstIdentity.then(() => this.#watch.firstSnapshot());
  }

  ready(): Promise<void> {
    return this.#ready ?? Promise.reject(new Error('the control-plane identity source was not started'));
  }

  notReadyReason(): string | undefined {
    const r = this.#svids.readiness();
    return r.ready ? undefined : r.reason;
  }

  get nextRenewalMs(): number | undefined {
    return this.#svids.nextRenewalMs;
  }

  /** Over mTLS with the current SVID: the control plane signs for that SVID's ID and no other. */
  mintJwtSvid = (audience: readonly string[]): Promise<MintedJwtSvid> => {
    const svid = this.#svids.current;
    if (!svid) return Promise.reject(new TesseraError('TESSERA_ERR_JWT_SVID_UNAVAILABLE', 'no SVID yet'));
    return this.#client.mintJwtSvid(svid, audience);
  };

  get discovery(): NonNullable<IdentitySource['discovery']> {
    return { client: this.#client, currentSvid: () => this.#svids.current };
  }

  stop(): void {
    this.#svids.stop();
    this.#watch.stop();
    this.#client.close();
  }

  /** Installs the identity made of this SVID and these watched bundles; on a refusal neither is taken. */
  #accept(svid: IssuedSvid | undefined, watched: TrustBundleSet | undefined): void {
    installIdentity(this.#d.store, svid, watched, this.#bootstrap);
    this.#svid = svid;
    this.#watched = watched;
  }
}
