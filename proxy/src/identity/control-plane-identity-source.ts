// The control-plane identity source: attestation and renewal (control-plane-svid-source.ts) and the Config/Watch
// stream (bundles, policies, bans) over one client, assembled into the identity store. The client's calls, and the
// discovery streams that share it, go to the replica the one ControlPlaneEndpoints names (failover and failback).
// With a state dir (svid-state-dir.ts) every installed SVID and every pushed trust bundle of its own trust domain is
// written there, and a restart starts from them.
// Loaded only for identity.controlPlane, so a proxy on file identities does not load gRPC.
import { join } from 'node:path';
import type { ProxyReportMsg, ReportAckMsg } from '../../../common/contract/config-v1.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { readNamedFileSync } from '../../../shared-io/read-named-file.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import { type EvidenceProvider, evidenceProvider } from './attestation-evidence.js';
import { bootstrapTrustDomain } from './bootstrap-trust-domain.js';
import { installIdentity } from './bundle-merge.js';
import { CLOCK_OFFSET_WARN_MS } from './clock-offset.js';
import { ConfigWatch } from './config-watch-client.js';
import { ControlPlaneClient, type MintedJwtSvid } from './control-plane-client.js';
import { ControlPlaneEndpoints } from './control-plane-endpoints.js';
import { ControlPlaneSvidSource, type IssuedSvid, type OwnBan, refusedByControlPlane } from './control-plane-svid-source.js';
import type { IdentitySource, IdentitySourceDeps } from './identity-source.js';
import { resolveHost } from './resolve-host.js';
import type { FileLock } from '../../../shared-io/process-file-lock.js';
import { bundleFileName, SvidStateDir } from './svid-state-dir.js';

type ControlPlaneIdentity = Extract<ProxyConfig['identity'], { kind: 'controlPlane' }>;

export class ControlPlaneIdentitySource implements IdentitySource {
  readonly deliversPolicies = true;
  readonly #d: IdentitySourceDeps;
  readonly #td: TrustDomain;
  readonly #bootstrapBundle: TrustBundle;
  /** The bootstrap file's authorities, with those the state dir kept from the last run (#restore). */
  #bootstrap: TrustBundleSet;
  readonly #evidence: EvidenceProvider;
  /** Where the SVID is kept across restarts (identity.controlPlane.stateDir), if anywhere: none when it is read-only. */
  #state: SvidStateDir | undefined;
  /** The state dir's lock, held until stop(). */
  #stateLock: FileLock | undefined;
  readonly #endpoints: ControlPlaneEndpoints;
  readonly #client: ControlPlaneClient;
  readonly #svids: ControlPlaneSvidSource;
  readonly #watch: ConfigWatch;
  /** The SVID and the watched bundles last accepted: the identity installed is made of both. */
  #svid: IssuedSvid | undefined;
  #watched: TrustBundleSet | undefined;
  #ready: Promise<void> | undefined;
  #stopped = false;
  /** The clock offset was last told as too large: told again only once it is back within the bound. */
  #offsetTold = false;
  #clockOffsetMs: number | undefined;

  constructor(cp: ControlPlaneIdentity, defaultAction: 'deny' | 'allow', deps: IdentitySourceDeps) {
    this.#d = deps;
    const { store, metrics, log, clock, deadlineClock, timers } = deps;
    const bootstrapPem = readNamedFileSync({ path: cp.bundleFile, what: 'identity.controlPlane.bundleFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' }).toString('utf8');
    const td = bootstrapTrustDomain(bootstrapPem, cp.bundleFile, cp.trustDomain, cp.trustDomainAt);
    this.#td = td;
    this.#bootstrapBundle = TrustBundle.parse(td, bootstrapPem);
    this.#bootstrap = new TrustBundleSet([this.#bootstrapBundle]);
    const state = cp.stateDir ? new SvidStateDir(cp.stateDir) : undefined;
    this.#state = state;
    this.#evidence = evidenceProvider({ ...(cp.joinToken ? { joinToken: cp.joinToken } : {}), ...(cp.joinTokenFile ? { joinTokenFile: cp.joinTokenFile } : {}), ...(cp.kubernetesTokenFile ? { kubernetesTokenFile: cp.kubernetesTokenFile } : {}), ...(cp.tpm ? { tpm: cp.tpm } : {}) });
    this.#endpoints = new ControlPlaneEndpoints({
      addresses: cp.addresses,
      clock,
      timers,
      resolve: (host) => resolveHost(host),
      probe: (address) => this.#client.probe(address),
      failbackIntervalMs: cp.failbackIntervalMs,
      // A failover is news (a replica is down); a failback or a DNS answer only says where the proxy is now.
      onSwitch: (e) => log[e.reason === 'failover' ? 'warn' : 'info']({ from: e.from, to: e.to, reason: e.reason, ...(e.error ? { err: e.error } : {}) }, `control plane ${e.reason}: now ${e.to}`),
      onCandidates: (st) => log.info({ candidates: st.candidates, current: st.current }, 'control-plane addresses resolved'),
      onResolveError: (host, err) => log.warn({ host, err: String((err as Error).message ?? err) }, 'control-plane host name did not resolve; the known addresses stay'),
    });
    deps.controlPlaneMetrics?.observe(() => this.#endpoints.state());
    this.#client = new ControlPlaneClient({ endpoints: this.#endpoints, trustDomain: td, bundles: () => store.current?.bundles ?? this.#watched ?? this.#bootstrap, clock, deadlineClock });
    this.#svids = new ControlPlaneSvidSource({
      signer: this.#client,
      evidence: this.#evidence,
      install: (s) => {
        const before = this.#svid?.serial;
        this.#accept(s, this.#watched);
        // Kept for the next start (off the install's path: a slow disk delays no handshake); a failure is logged.
        this.#state?.save(s).catch((e: unknown) => log.warn({ code: isTesseraError(e) ? e.code : undefined, err: String((e as Error).message ?? e) }, 'SVID not written to the state dir; a restart attests again'));
        // The control plane ends a Config/Watch stream when the SVID it was opened with expires: reopen it with the
        // new one now, in the same turn as the discovery streams (identity-store subscribers, mesh-discovery.ts),
        // before the old SVID's gRPC channel, closed once the first of them dials with the new one, fails it.
        if (before !== undefined && s.serial !== before) this.#watch.restart();
      },
      trustDomain: td,
      clock,
      timers,
      onClockOffset: (ms) => {
        this.#clockOffsetMs = ms;
        deps.controlPlaneMetrics?.clockOffset(ms);
        this.#tellClockOffset(ms);
      },
      onEvent: (e) => {
        metrics.svidRotation(e.result, e.code);
        const notAfter = e.notAfterMs ? new Date(e.notAfterMs).toISOString() : undefined;
        if (e.result === 'success') log.info({ kind: e.kind, serial: e.serial, notAfter, ...(e.kind === 'restore' ? { file: this.#state?.file } : {}) }, e.kind === 'restore' ? 'SVID restored from the state dir (no attestation)' : 'SVID installed');
        else if (e.fallback) log.warn({ kind: e.kind, result: e.result, code: e.code, err: e.error, evidence: this.#evidence.description }, 'the control plane refused to renew the restored SVID: dropped, attesting instead');
        else log.warn({ kind: e.kind, result: e.result, err: e.error }, 'SVID request failed');
      },
    });
    this.#watch = new ConfigWatch({
      open: (current, cb) => this.#client.watch(current, cb),
      currentSvid: () => this.#svid,
      retryDelayMs: (attempt) => this.#endpoints.retryDelayMs(attempt),
      timers,
      defaultAction,
      apply: (u) => {
        try {
          this.#accept(this.#svid, u.bundles);
        } catch (e) {
          metrics.trustBundleUpdate('refused');
          throw e;
        }
        metrics.trustBundleUpdate('success');
        this.#keepBundle(u.bundles);
        deps.policies.setSnapshot(u.policies);
        metrics.policyUpdate('success');
        deps.denyList.set(u.denyList);
        deps.jwtBundles.set(u.jwtBundles);
      },
      onEvent: (e) => {
        if (e.kind === 'refused') {
          metrics.policyUpdate('refused');
          log.warn({ version: e.version, err: e.error }, 'config snapshot refused; the previous one stays');
        } else if (e.kind === 'disconnected') {
          log.warn({ err: e.error, retryInMs: e.retryInMs }, 'config stream disconnected');
          // Refused: a restored SVID (banned meanwhile, say) or a ban of the current one: renew it now; that renewal's
          // refusal drops a restored SVID (then attests) and makes a revoked one not ready.
          if (refusedByControlPlane(e.cause)) this.#svids.renewNowRefused(e.cause);
        } else log.info({ version: e.version }, 'config snapshot applied');
      },
    });
    // Last, so a failure above cannot leave it held: another proxy on this dir fails the start here, before attesting.
    const taken = state?.lock();
    this.#stateLock = taken?.lock;
    if (taken?.readOnly) {
      // Unlocked, a dir is safe only unused: two proxies restoring one kept SVID share its key (audit 56c F1).
      this.#state = undefined;
      log.warn({ dir: state?.dir, err: taken.readOnly }, 'the state dir cannot be written, so it cannot be locked: it is not used (nothing is restored from it or kept in it, as without stateDir)');
    }
  }

  /**
   * The SVID kept in the state dir, if usable, is installed first; DNS names resolve (bounded); then attestation (or
   * the restored SVID's renewal schedule) starts and the config stream opens with the first SVID.
   */
  start(): void {
    this.#endpoints.start();
    const firstIdentity = this.#restore()
      .then(() => this.#endpoints.refresh())
      .then(() => {
        if (!this.#stopped) this.#svids.start();
        return this.#svids.firstSvid();
      })
      .then(() => this.#watch.start());
    // Ready once the first SVID is also on disk (a write that failed was logged): a start that fails after this
    // point (an edge certificate, the Workload API socket) has lost nothing, the next one starts from it.
    this.#ready = firstIdentity.then(() => this.#watch.firstSnapshot()).then(() => this.#state?.settled());
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

  get clockOffsetMs(): number | undefined {
    return this.#clockOffsetMs;
  }

  ownBan = (): OwnBan | undefined => this.#svids.revokedBy;

  /** Over mTLS with the current SVID: the control plane signs for that SVID's ID and no other. */
  mintJwtSvid = (audience: readonly string[]): Promise<MintedJwtSvid> => {
    const svid = this.#svids.current;
    if (!svid) return Promise.reject(new TesseraError('TESSERA_ERR_JWT_SVID_UNAVAILABLE', 'no SVID yet'));
    return this.#client.mintJwtSvid(svid, audience);
  };

  /** Over mTLS with the current SVID: the control plane files the report under that SVID's ID. */
  report = (msg: ProxyReportMsg): Promise<ReportAckMsg> => {
    const svid = this.#svids.current;
    if (!svid) return Promise.reject(new TesseraError('TESSERA_ERR_REPORT_FAILED', 'no SVID yet to authenticate a report with'));
    return this.#client.report(svid, msg);
  };

  get discovery(): NonNullable<IdentitySource['discovery']> {
    return { client: this.#client, currentSvid: () => this.#svid, endpoints: this.#endpoints };
  }

  stop(): void {
    this.#stopped = true;
    this.#stateLock?.release();
    this.#endpoints.stop();
    this.#svids.stop();
    this.#watch.stop();
    this.#client.close();
  }

  /** A host clock found off is told once (and once when it is right again), not at every renewal. */
  #tellClockOffset(ms: number): void {
    const off = Math.abs(ms) >= CLOCK_OFFSET_WARN_MS;
    if (off === this.#offsetTold) return;
    this.#offsetTold = off;
    const seconds = Math.round(ms / 100) / 10;
    if (!off) {
      this.#d.log.info({ clockOffsetSeconds: seconds }, "this host's clock agrees with the control plane's again");
      return;
    }
    const effect = ms > 0 ? 'a certificate looks expired here that long before its NotAfter' : "a certificate looks not valid yet here for that long after its NotBefore (a fresh one, when that is longer than the control plane's svid.backdate)";
    this.#d.log.warn(
      { clockOffsetSeconds: seconds },
      `this host's clock is ${Math.abs(seconds)} s ${ms > 0 ? 'ahead of' : 'behind'} the control plane's (from its SignSvid answer): SVID renewal follows the control plane's time, but ${effect} (docs/runbooks/clock-skew.md)`,
    );
  }

  /**
   * Starts from the SVID of the state dir when there is a usable one; otherwise says why not, and attestation follows.
   * The bundle it kept joins the bootstrap file's first: the control plane and the kept SVID may chain only to it.
   */
  async #restore(): Promise<void> {
    const state = this.#state;
    if (!state) return;
    const { log, clock } = this.#d;
    const evidence = this.#evidence.description;
    let bootstrap = this.#bootstrapBundle;
    try {
      const keptBundle = state.loadBundle(this.#td);
      if (keptBundle) {
        bootstrap = new TrustBundle(this.#td, [...bootstrap.authorities, ...keptBundle.authorities]);
        this.#bootstrap = new TrustBundleSet([bootstrap]);
        log.info({ file: join(state.dir, bundleFileName(this.#td)), authorities: keptBundle.fingerprints() }, 'trust bundle restored from the state dir (beside the bootstrap bundle)');
      }
    } catch (e) {
      log.warn({ code: isTesseraError(e) ? e.code : undefined, err: String((e as Error).message ?? e) }, 'the persisted trust bundle cannot be used; the bootstrap bundle alone is trusted');
    }
    try {
      const kept = state.load({ trustDomain: this.#td, bootstrap, nowMs: clock.nowMs() });
      if (kept.kind === 'svid') await this.#svids.restore(kept.svid);
      // Out of its life by this host's clock, which may be what is wrong (audit 53b F2): the control plane's decides.
      else if (kept.kind === 'stale' && kept.reason === 'not_yet_valid') {
        log.warn({ file: state.file, reason: kept.why }, "the persisted SVID is not valid yet by this host's clock (behind the control plane's?): held until it is, then restored");
        this.#svids.restoreWhenValid(kept.svid);
      } else if (kept.kind === 'stale') {
        log.info({ file: state.file, reason: kept.why, evidence }, 'the persisted SVID has expired by this clock; asking the control plane to renew it before attesting');
        this.#svids.renewExpiredFirst(kept.svid);
      }
    } catch (e) {
      log.warn({ code: isTesseraError(e) ? e.code : undefined, err: String((e as Error).message ?? e), evidence }, 'the persisted SVID cannot be used; attesting');
    }
  }

  /** The own trust domain's authorities as just pushed, kept for the next start (off the update's path; a failure is logged). */
  #keepBundle(bundles: TrustBundleSet): void {
    const own = bundles.get(this.#td);
    if (!own || !this.#state) return;
    this.#state.saveBundle(own).catch((e: unknown) => this.#d.log.warn({ code: isTesseraError(e) ? e.code : undefined, err: String((e as Error).message ?? e) }, 'trust bundle not written to the state dir; a restart trusts the bootstrap bundle alone'));
  }

  /** Installs the identity made of this SVID and these watched bundles; on a refusal neither is taken. */
  #accept(svid: IssuedSvid | undefined, watched: TrustBundleSet | undefined): void {
    // Taken before the store's subscribers run: the streams they reopen on a rotation open with this SVID.
    const before = this.#svid;
    this.#svid = svid;
    try {
      installIdentity(this.#d.store, svid, watched, this.#bootstrap);
    } catch (e) {
      // Refused (the store kept its identity): so does this. Installed, but a subscriber threw: keep the new one.
      if (this.#d.store.current?.serial !== svid?.serial) this.#svid = before;
      throw e;
    }
    this.#watched = watched;
  }
}
