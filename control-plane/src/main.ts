// The control plane's composition root: data dir, SQLite store, CA, issuance and attestation, the gRPC services
// (Identity, Config), the admin HTTP listener and admin.sock, the optional injector webhook, and one wall-clock
// tick. Everything is created here and nowhere else; close() drains it within a deadline.

import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { BuildInfo } from '../../common/build-info.js';
import type { Clock } from '../../common/clock.js';
import { describeError, TesseraError } from '../../common/errors.js';
import { readNamedFileSync } from '../../shared-io/read-named-file.js';
import { startupError } from '../../shared-io/startup-error.js';
import { adminSocketPath } from './admin/admin-client.js';
import { AdminHttp } from './admin/admin-http.js';
import { adminRoutes } from './admin/admin-routes.js';
import { AdminSocket, socketAnswers } from './admin/admin-socket.js';
import { certsView, updateCaGauges } from './admin/certs-view.js';
import { createMetrics } from './admin/metrics.js';
import { ConfigHub } from './api/config-service.js';
import { GrpcServer } from './api/grpc-server.js';
import { guardedService, identityHandlers } from './api/identity-service.js';
import { loadTesseraServices } from './api/protos.js';
import { attestationFailureReason } from './attestation/attested-identity.js';
import { JoinTokenAttestor } from './attestation/join-token-attestor.js';
import { createHttpsFetch } from './attestation/k8s-api-fetch.js';
import { K8sAttestation, type KubernetesAttestor } from './attestation/k8s-attestation.js';
import { JwksRefresher } from './attestation/k8s-jwks-refresher.js';
import { K8sJwtAttestor } from './attestation/k8s-jwt-attestor.js';
import { SvidAttestor } from './attestation/svid-attestor.js';
import { writeFileAtomicSync } from './ca/atomic-file.js';
import { auditCaRecovery } from './ca/audit-recovery.js';
import { AuthorityStore, type CrashPoint } from './ca/authority-store.js';
import { type CaEvent, CaManager } from './ca/ca-manager.js';
import type { ControlPlaneConfig } from './config/cp-config.js';
import { type InjectorWebhook, startInjectorWebhook } from './injector/webhook-server.js';
import { Issuer } from './issuance/issuer.js';
import { RateLimiter } from './issuance/rate-limiter.js';
import { Revocations } from './issuance/revocations.js';
import { SelfSvidSource } from './issuance/self-svid.js';
import { BreakGlass } from './policy/break-glass.js';
import { PolicyDirSource } from './policy/policy-dir-source.js';
import { AuditLog } from './store/audit-log.js';
import { prepareDataDir } from './store/data-dir.js';
import { openDatabase } from './store/database.js';
import { GrantStore } from './store/grant-store.js';
import { InventoryStore } from './store/inventory-store.js';
import { MetaStore } from './store/meta-store.js';
import { RevocationStore } from './store/revocation-store.js';
import { TokenStore } from './store/token-store.js';

/** pino-compatible subset. */
export interface ControlPlaneLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface ControlPlaneDeps {
  readonly clock: Clock;
  readonly log: ControlPlaneLogger;
  readonly build: BuildInfo; // tessera_build_info's labels
  /** Test seam: kill this process at a named point of a CA commit (docs/control-plane.md). */
  readonly crashAt?: CrashPoint;
  /** Period of the maintenance tick (default 1 s). */
  readonly tickMs?: number;
}

export interface ControlPlaneHandle {
  /** host:port the gRPC listener bound (the real port when the config said 0). */
  readonly grpcAddress: string;
  readonly adminAddress: string;
  readonly adminSocket: string;
  readonly bundleFile: string;
  readonly injectorAddress: string | undefined;
  /** Stops accepting, ends Config/Watch streams, lets calls finish, closes everything within `deadlineMs`. */
  close(deadlineMs?: number): Promise<void>;
}

export const BUNDLE_FILE = 'bundle.pem';
const DATABASE_FILE = 'tessera.db';
const AUDIT_FILE = 'audit.log';
const TOKEN_KEEP_MS = 24 * 3_600_000;

export async function startControlPlane(config: ControlPlaneConfig, deps: ControlPlaneDeps): Promise<ControlPlaneHandle> {
  const { clock, log } = deps;
  const td = config.trustDomain;
  const dataDir = config.dataDir;
  prepareDataDir(dataDir, log);
  const socketPath = adminSocketPath(dataDir);
  // Two control planes on one data dir would fork the CA: refuse before touching anything.
  if (await socketAnswers(socketPath)) throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${socketPath} answers: another control plane serves this data dir`);

  // Undo stack: on a failed start, whatever was opened is closed again (newest first).
  const cleanups: (() => unknown)[] = [];
  const unwind = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort: the start already failed with the error that matters
      }
    }
  };
  try {
    const dbFile = join(dataDir, DATABASE_FILE);
    const db = (() => {
      try {
        return openDatabase(dbFile);
      } catch (e) {
        throw startupError(e, 'TESSERA_ERR_CP_START_FAILED', dbFile);
      }
    })();
    cleanups.push(() => db.close());
    // Token hashes and the audit trail: owner-only like the rest of the data dir.
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    const audit = new AuditLog(db, join(dataDir, AUDIT_FILE));
    cleanups.push(() => audit.close());
    const inventory = new InventoryStore(db);
    const tokens = new TokenStore(db);
    const grants = new GrantStore(db);
    const meta = new MetaStore(db);
    const registry = new Registry();
    const metrics = createMetrics(registry, deps.build);

    let afterCaChange: (() => void) | undefined;
    const crashAt = deps.crashAt;
    const ca = await CaManager.open({
      store: new AuthorityStore({
        dir: join(dataDir, 'ca'),
        ...(crashAt ? { crashHook: (p: CrashPoint) => p === crashAt && process.kill(process.pid, 'SIGKILL') } : {}),
      }),
      trustDomain: td,
      lifetimes: config.ca,
      clock,
      liveSvids: (id, now) => inventory.liveByAuthority(id, now),
      onChange: (_snap, events: readonly CaEvent[]) => {
        for (const e of events) {
          audit.record(clock.nowMs(), { event: e.event, result: 'ok', caller: 'control-plane', authority: e.authority, ...(e.detail ?? {}) });
          log.info({ event: e.event, authority: e.authority }, 'CA changed');
        }
        afterCaChange?.();
      },
    });
    auditCaRecovery(audit, ca.current().authorities, clock.nowMs());
    const bundleFile = join(dataDir, BUNDLE_FILE);
    // Public: what proxies and `svid fetch` use as their bootstrap trust anchor. Written before ready.
    const writeBundle = () => writeFileAtomicSync(bundleFile, ca.current().bundle.toPem(), 0o644);
    writeBundle();

    const k8sConfig = config.attestors.kubernetes;
    let kubernetes: KubernetesAttestor | undefined;
    let stopJwksRefresh = () => {};
    if (k8sConfig) {
      const jwt = new K8sJwtAttestor({ trustDomain: td, issuer: k8sConfig.issuer, audience: k8sConfig.audience, jwksFile: k8sConfig.jwksFile, clock });
      const api = k8sConfig.apiServer;
      if (api) {
        // The cluster CA and the control plane's own token are mounted by the kubelet; the token rotates, so read it each time.
        const fetch = createHttpsFetch({ caPem: readNamedFileSync({ path: api.caFile, what: 'attestors.kubernetes.apiServer.caFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' }).toString('utf8') });
        const callerToken = () => readFileSync(api.tokenFile, 'utf8').trim();
        const refresher = new JwksRefresher({
          apiServer: api.url,
          fetch,
          bearerToken: () => {
            try {
              return callerToken();
            } catch {
              return undefined;
            }
          },
          issuer: k8sConfig.issuer,
          file: k8sConfig.jwksFile,
          intervalMs: api.jwksRefreshMs,
          clock,
          onResult: (ok, detail) => (ok ? log.info({ detail }, 'kubernetes JWKS refreshed') : log.warn({ err: detail }, 'kubernetes JWKS refresh failed; the last keys stay')),
        });
        await refresher.refresh();
        refresher.start();
        stopJwksRefresh = () => refresher.stop();
        cleanups.push(stopJwksRefresh);
        kubernetes = new K8sAttestation(jwt, api.tokenReview ? { apiServer: api.url, fetch, callerToken, audience: k8sConfig.audience } : undefined);
      } else {
        kubernetes = new K8sAttestation(jwt);
      }
    }
    try {
      kubernetes?.check();
    } catch (e) {
      // The file may be provisioned after start (it is re-read when it changes): warn, attest nothing until then.
      log.warn({ err: describeError(e) }, 'kubernetes attestor: JWKS not usable yet');
    }
    const svidAttestor = new SvidAttestor(() => ca.current().bundle, clock);
    // Bans publish through the config hub, which exists a few lines below.
    let publishConfig = () => {};
    const revocations = new Revocations({ store: new RevocationStore(db), tokens, inventory, audit, trustDomain: td, clock, onChange: () => publishConfig() });
    const limiter = new RateLimiter(config.svid.rateLimit, clock);
    const issuer = new Issuer({
      trustDomain: td,
      ca: () => ca.current(),
      svid: config.svid,
      ...(config.attestors.joinToken.enabled ? { joinTokens: new JoinTokenAttestor(tokens, clock) } : {}),
      ...(kubernetes ? { kubernetes } : {}),
      svids: svidAttestor,
      revocations,
      limiter,
      inventory,
      audit,
      clock,
      metrics: {
        issued: (attestor, seconds) => {
          metrics.issuances.inc({ result: 'issued', attestor });
          metrics.issuanceDuration.observe({ attestor }, seconds);
        },
        refused: (code, attestor) => {
          metrics.issuances.inc({ result: 'refused', attestor });
          metrics.refusals.inc({ code });
          if (code.startsWith('TESSERA_ERR_ATTESTATION_')) metrics.attestationFailures.inc({ reason: attestationFailureReason(code) });
        },
      },
    });
    const self = new SelfSvidSource(issuer, td, config.svid.ttlMs, clock);
    self.issue(ca.current().signer.authorityId);
    const serverIdentity = () => {
      const s = self.current!;
      return { certChainPem: s.certChainPem, keyPem: s.keyPem, clientCasPem: ca.current().bundle.toPem() };
    };

    let grpcServer: GrpcServer | undefined;
    let policySource: PolicyDirSource | undefined;
    let breakGlass: BreakGlass | undefined;
    const hub = new ConfigHub({
      inputs: { bundles: () => [ca.current().bundle], policies: () => policySource?.policies ?? [], grants: () => breakGlass?.active() ?? [], denyList: () => revocations.denyList() },
      svids: svidAttestor,
      admit: (id, serial) => revocations.check(id, serial),
      peerChain: (call) => grpcServer?.chainOf(call) ?? [],
      clock,
      nextVersion: () => meta.increment('config.snapshot_version'),
      onWatchers: (n) => metrics.configWatchers.set(n),
      onVersion: (v) => metrics.snapshotVersion.set(v),
      onSent: () => metrics.snapshotsSent.inc(),
      onRefused: (code, caller, reason) => {
        metrics.attestationFailures.inc({ reason: attestationFailureReason(code) });
        audit.record(clock.nowMs(), { event: 'config.watch_refused', result: 'refused', code, caller, ...(reason ? { reason } : {}) });
      },
    });
    breakGlass = new BreakGlass(grants, audit, clock, () => hub.publish());
    publishConfig = () => hub.publish();
    if (config.policiesDir) {
      const dir = config.policiesDir;
      policySource = new PolicyDirSource({
        dir,
        onPolicies: (p) => {
          metrics.policiesLoaded.set(p.length);
          log.info({ dir, policies: p.map((x) => x.name) }, 'policies loaded');
          hub.publish();
        },
        onErrors: (errors) => {
          metrics.policyLoadErrors.inc(errors.length);
          for (const e of errors) log.warn({ file: e.file, line: e.line, code: e.code, err: e.message }, 'policy file refused; the previous set stays');
        },
      });
      policySource.start();
      cleanups.push(() => policySource?.stop());
    }

    const services = loadTesseraServices();
    const server = new GrpcServer({
      listen: config.listen,
      identity: serverIdentity(),
      handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
      headersTimeoutMs: config.limits.headersTimeoutMs,
      maxConnections: config.limits.maxConnections,
      // grpc-js' own cap sits above ours, so a merely oversized request gets our coded answer, not a reset.
      maxReceiveBytes: config.limits.maxRequestBytes * 4,
      onTlsFailure: (reason) => metrics.tlsFailures.inc({ reason }),
    });
    grpcServer = server;
    server.grpc.addService(
      guardedService(services.identity.service, config.limits.maxRequestBytes),
      identityHandlers({
        issuer,
        peerChain: (call) => server.chainOf(call),
        onRejected: (code, caller, size) => {
          metrics.issuances.inc({ result: 'refused', attestor: 'none' });
          metrics.refusals.inc({ code });
          audit.record(clock.nowMs(), { event: 'svid.refused', result: 'refused', code, caller, size });
        },
      }),
    );
    server.grpc.addService(guardedService(services.config.service, config.limits.maxRequestBytes), hub.handlers());
    await server.start();
    cleanups.push(() => server.stop(0));

    // Self SVID and server credentials follow the CA: a new bundle (prepare) or signer (activate) is served at once.
    const refreshSelf = (force: boolean) => {
      const signer = ca.current().signer.authorityId;
      if (self.due(signer)) self.issue(signer);
      else if (!force) return;
      server.updateIdentity(serverIdentity());
    };
    afterCaChange = () => {
      try {
        writeBundle();
        refreshSelf(true);
      } catch (e) {
        log.error({ err: describeError(e) }, 'applying a CA change failed');
      }
      updateCaGauges(metrics, ca.current());
      hub.publish();
    };
    updateCaGauges(metrics, ca.current());

    let ready = false;
    let closing = false;
    const admin = new AdminHttp({
      listen: config.adminListen,
      registry,
      notReadyReason: () => {
        if (closing) return 'shutting down';
        if (!ready) return 'starting';
        const s = self.current;
        return s && s.notAfterMs > clock.nowMs() ? null : 'the control plane SVID has expired';
      },
      certs: () => certsView(td, self.current, ca.current()),
      config: () => ({ ...config, trustDomain: td.name }),
    });
    await admin.start();
    cleanups.push(() => admin.stop());

    const adminSocket = new AdminSocket(
      socketPath,
      adminRoutes({ trustDomain: td, ca, tokens, joinTokensEnabled: config.attestors.joinToken.enabled, inventory, audit, breakGlass, revocations, ...(policySource ? { policies: policySource } : {}), clock }),
    );
    await adminSocket.start();
    cleanups.push(() => adminSocket.stop());

    let injector: InjectorWebhook | undefined;
    if (config.injector) {
      const inj = config.injector;
      const read = (f: string) => {
        try {
          return readFileSync(f, 'utf8');
        } catch (e) {
          throw new TesseraError('TESSERA_ERR_INJECT_BAD_CONFIG', `injector: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      };
      injector = await startInjectorWebhook({ listen: inj.listen, certPem: read(inj.certFile), keyPem: read(inj.keyFile), config: inj.settings, bundlePem: () => ca.current().bundle.toPem(), logger: log });
      cleanups.push(() => injector?.close());
    }

    // One wall-clock tick: expired Watch callers, break-glass expiry, self-SVID renewal, CA maintenance.
    let ticks = 0;
    let maintenance: Promise<unknown> | undefined;
    const tick = () => {
      ticks++;
      try {
        hub.tick();
        breakGlass.expire();
        metrics.breakGlassActive.set(breakGlass.active().length);
        metrics.grpcConnections.set(server.connections);
        refreshSelf(false);
        if (ticks % 60 === 0) limiter.sweep();
        if (ticks % 3600 === 0) tokens.prune(clock.nowMs(), TOKEN_KEEP_MS);
      } catch (e) {
        log.error({ err: describeError(e) }, 'maintenance tick failed');
      }
      if (ticks % 5 === 0 && !maintenance) {
        maintenance = ca
          .maintain()
          .catch((e: unknown) => log.error({ err: describeError(e) }, 'CA maintenance failed'))
          .finally(() => {
            maintenance = undefined;
          });
      }
    };
    const timer = setInterval(tick, deps.tickMs ?? 1_000);
    cleanups.push(() => clearInterval(timer));

    ready = true;
    log.info({ trustDomain: td.name, grpc: server.address, admin: admin.address, dataDir }, 'control plane ready');
    let closed: Promise<void> | undefined;
    return {
      grpcAddress: server.address,
      adminAddress: admin.address,
      adminSocket: socketPath,
      bundleFile,
      injectorAddress: injector?.address,
      close(deadlineMs = 10_000) {
        closed ??= (async () => {
          closing = true;
          clearInterval(timer);
          // Watchers are told to go (OK status) so they reconnect elsewhere; unary calls get the grace period.
          hub.endAll();
          const started = Date.now();
          await server.stop(Math.max(0, deadlineMs - 500));
          const rest = Math.max(100, deadlineMs - (Date.now() - started));
          await Promise.race([
            Promise.allSettled([injector?.close(), adminSocket.stop(), admin.stop()]),
            new Promise((r) => setTimeout(r, rest).unref()),
          ]);
          policySource?.stop();
          stopJwksRefresh();
          // A CA commit under way finishes before the store goes away.
          await maintenance;
          audit.close();
          db.close();
          log.info({}, 'control plane stopped');
        })();
        return closed;
      },
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}
