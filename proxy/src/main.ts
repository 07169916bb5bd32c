// The proxy's composition root: builds the identity source, policy source, telemetry, admin listener and the
// inbound/outbound listeners from a validated config, and owns start-up order and graceful drain.
import type { Logger } from 'pino';
import type { BuildInfo } from '../../common/build-info.js';
import type { Clock } from '../../common/clock.js';
import { describeError, TesseraError } from '../../common/errors.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { certificatesOf, readNamedFileSync } from '../../shared-io/read-named-file.js';
import { type AdminServer, startAdminServer } from './admin/admin-server.js';
import { certsReport, type ServedCheck } from './admin/certs-report.js';
import { probeServedSerial, type ServedTarget } from './admin/served-check.js';
import { PolicyDirSource } from './authz/policy-dir-source.js';
import { PolicyHolder } from './authz/policy-holder.js';
import type { ProxyConfig } from './config/proxy-config.js';
import { redactedConfig } from './config/redact-config.js';
import { EdgeListener } from './edge/edge-listener.js';
import type { IssuedSvid } from './identity/control-plane-svid-source.js';
import { FileIdentitySource } from './identity/file-identity-source.js';
import type { IdentitySnapshot } from './identity/identity-snapshot.js';
import { IdentityStore } from './identity/identity-store.js';
import { InboundH2Listener } from './listeners/inbound-h2-listener.js';
import { InboundListener } from './listeners/inbound-listener.js';
import type { ListenerDeps } from './listeners/listener-deps.js';
import { OutboundH2Listener } from './listeners/outbound-h2-listener.js';
import { OutboundListener } from './listeners/outbound-listener.js';
import { createAccessLog, createRequestIds } from './telemetry/access-log.js';
import { createProxyRegistry, ProxyMetrics } from './telemetry/metrics.js';
import { resolveTracing } from './telemetry/tracing-settings.js';
import { DenyListHolder } from './tls/deny-list-holder.js';
import { ClientContexts, TicketKeys } from './tls/tls-contexts.js';
import type { WorkloadApiServer } from './workload-api/workload-api-server.js';

export interface ProxyRuntime {
  readonly clock: Clock;
  readonly log: Logger;
  /** The process environment: standard OTEL_* variables configure tracing where the config does not. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Version, Node and OpenSSL, for tessera_build_info. */
  readonly build: BuildInfo;
}

export interface RunningProxy {
  readonly admin: { host: string; port: number };
  readonly listeners: readonly { kind: 'inbound' | 'outbound' | 'edge'; name: string; port: number }[];
  readiness(): { ready: boolean; reason?: string };
  /** Stop accepting, let in-flight exchanges finish up to the drain deadline, then close everything. */
  shutdown(): Promise<void>;
}

type Stoppable = { stop(): void };
type Listener = InboundListener | InboundH2Listener | OutboundListener | OutboundH2Listener | EdgeListener;

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

function sameBundles(a: TrustBundleSet, b: TrustBundleSet): boolean {
  const key = (s: TrustBundleSet) =>
    s
      .bundles()
      .map((x) => `${x.trustDomain.name}=${x.fingerprints().sort().join(',')}`)
      .sort()
      .join(';');
  return key(a) === key(b);
}

export async function startProxy(config: ProxyConfig, rt: ProxyRuntime): Promise<RunningProxy> {
  const { clock, log } = rt;
  const nowMs = () => clock.nowMs();
  const registry = createProxyRegistry();
  const metrics = new ProxyMetrics(registry, { build: rt.build });
  const identity = new IdentityStore(clock);
  const policies = new PolicyHolder(config.authorization.defaultAction);
  // Bans come only over Config/Watch: a files-identity proxy keeps the empty list.
  const denyList = new DenyListHolder();
  const accessLog = createAccessLog({ destination: config.telemetry.accessLog, clock });
  const stoppables: Stoppable[] = [];
  let draining = false;
  let listenersUp = false;
  let identityReason: () => string | undefined = () => (identity.current ? undefined : 'no SVID loaded yet');
  let nextRenewalMs: () => number | undefined = () => undefined;
  let lastServedCheck: ServedCheck | null = null;

  identity.subscribe((s) => metrics.svidExpiry(s.notAfterMs));

  // ---- identity
  let firstIdentity: Promise<void>;
  let firstPolicies: Promise<void> | undefined;
  if (config.identity.kind === 'files') {
    const source = new FileIdentitySource({
      files: config.identity,
      store: identity,
      clock,
      onEvent: (e) => {
        metrics.svidRotation(e.result);
        if (e.result === 'success') log.info({ serial: e.serial }, 'SVID reloaded from files');
        else log.warn({ code: e.code, err: e.error }, 'SVID files refused; the previous identity stays');
      },
    });
    source.loadInitial();
    metrics.svidRotation('success');
    // Files are renewed by someone else (cert-manager, a script): all the proxy can do is say when they expired.
    identityReason = () => {
      const c = identity.current;
      if (!c) return 'no SVID loaded yet';
      return c.notAfterMs <= nowMs() ? `the SVID in ${config.identity.kind === 'files' ? config.identity.certFile : 'files'} expired at ${new Date(c.notAfterMs).toISOString()}` : undefined;
    };
    source.start();
    stoppables.push(source);
    firstIdentity = Promise.resolve();
  } else {
    const cp = config.identity;
    // gRPC and protobuf load only for this identity source: a proxy on file identities does not pay their memory.
    const [{ evidenceProvider }, { effectiveBundles }, { ConfigWatch }, { ControlPlaneClient }, { ControlPlaneSvidSource }] = await Promise.all([
      import('./identity/attestation-evidence.js'),
      import('./identity/bundle-merge.js'),
      import('./identity/config-watch-client.js'),
      import('./identity/control-plane-client.js'),
      import('./identity/control-plane-svid-source.js'),
    ]);
    const bootstrapPem = readNamedFileSync({ path: cp.bundleFile, what: 'identity.controlPlane.bundleFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' }).toString('utf8');
    const td = cp.trustDomain ? TrustDomain.parse(cp.trustDomain) : trustDomainOfBundle(bootstrapPem, cp.bundleFile);
    const bootstrap = new TrustBundleSet([TrustBundle.parse(td, bootstrapPem)]);
    let svid: IssuedSvid | undefined;
    let watched: TrustBundleSet | undefined;
    const install = () => {
      if (!svid) return;
      const bundles = effectiveBundles(watched, svid, nowMs()) ?? bootstrap;
      // A snapshot that only changed policies leaves the identity as it is: no new TLS contexts, no cache flush.
      const cur = identity.current;
      if (cur && cur.serial === svid.serial && sameBundles(cur.bundles, bundles)) return;
      identity.update({ chain: svid.chain, key: svid.key, bundles, source: 'control-plane' });
    };
    const client = new ControlPlaneClient({ address: cp.address, trustDomain: td, bundles: () => identity.current?.bundles ?? watched ?? bootstrap, clock });
    const source = new ControlPlaneSvidSource({
      signer: client,
      evidence: evidenceProvider({ ...(cp.joinToken ? { joinToken: cp.joinToken } : {}), ...(cp.joinTokenFile ? { joinTokenFile: cp.joinTokenFile } : {}), ...(cp.kubernetesTokenFile ? { kubernetesTokenFile: cp.kubernetesTokenFile } : {}) }),
      install: (s) => {
        const previous = svid;
        svid = s;
        try {
          install();
        } catch (e) {
          svid = previous;
          throw e;
        }
      },
      trustDomain: td,
      clock,
      onEvent: (e) => {
        metrics.svidRotation(e.result);
        if (e.result === 'success') log.info({ kind: e.kind, serial: e.serial, notAfter: e.notAfterMs ? new Date(e.notAfterMs).toISOString() : undefined }, 'SVID installed');
        else log.warn({ kind: e.kind, result: e.result, err: e.error }, 'SVID request failed');
      },
    });
    const watch = new ConfigWatch({
      open: (current, cb) => client.watch(current, cb),
      currentSvid: () => source.current,
      defaultAction: config.authorization.defaultAction,
      apply: (u) => {
        const previous = watched;
        watched = u.bundles;
        try {
          install();
        } catch (e) {
          watched = previous;
          metrics.trustBundleUpdate('refused');
          throw e;
        }
        metrics.trustBundleUpdate('success');
        policies.setSnapshot(u.policies);
        metrics.policyUpdate('success');
        denyList.set(u.denyList);
      },
      onEvent: (e) => {
        if (e.kind === 'refused') {
          metrics.policyUpdate('refused');
          log.warn({ version: e.version, err: e.error }, 'config snapshot refused; the previous one stays');
        } else if (e.kind === 'disconnected') log.warn({ err: e.error, retryInMs: e.retryInMs }, 'config stream disconnected');
        else log.info({ version: e.version }, 'config snapshot applied');
      },
    });
    identityReason = () => {
      const r = source.readiness();
      return r.ready ? undefined : r.reason;
    };
    nextRenewalMs = () => source.nextRenewalMs;
    source.start();
    stoppables.push(source, watch, { stop: () => client.close() });
    firstIdentity = source.firstSvid().then(() => watch.start());
    firstPolicies = firstIdentity.then(() => watch.firstSnapshot());
  }

  // ---- policies (local directory, when there is no control plane)
  if (config.authorization.policiesDir) {
    const dir = new PolicyDirSource({
      dir: config.authorization.policiesDir,
      onPolicies: (p) => {
        policies.setPolicies(p);
        metrics.policyUpdate('success');
        log.info({ policies: p.length }, 'policies reloaded');
      },
      onErrors: (errors) => {
        metrics.policyUpdate('refused');
        for (const e of errors) log.warn({ file: e.file, line: e.line, code: e.code }, e.message);
      },
    });
    policies.setPolicies(dir.loadInitial());
    dir.start();
    stoppables.push(dir);
  } else if (!firstPolicies) {
    policies.setPolicies([]); // no policy source: the default action decides (deny unless configured otherwise)
  }

  // ---- admin
  const listeners: Listener[] = [];
  // The first inbound listener, dialled where it is bound (a listener on one non-loopback address is not on 127.0.0.1).
  const tlsTarget = (): ServedTarget | undefined => {
    const l = listeners.find((x) => x instanceof InboundListener || x instanceof InboundH2Listener);
    return l ? { host: l.config.listen.host, port: l.port } : undefined;
  };
  const readiness = (): { ready: boolean; reason?: string } => {
    if (draining) return { ready: false, reason: 'draining' };
    const idr = identityReason();
    if (idr) return { ready: false, reason: idr };
    if (!policies.loaded) return { ready: false, reason: 'waiting for the first policy snapshot' };
    if (!listenersUp) return { ready: false, reason: 'listeners starting' };
    if (lastServedCheck && !lastServedCheck.match) return { ready: false, reason: `the inbound listener serves serial ${lastServedCheck.served}, not the installed ${lastServedCheck.serial}` };
    return { ready: true };
  };
  let admin: AdminServer;
  try {
    admin = await startAdminServer({
      listen: config.admin.listen,
      registry,
      readiness,
      certs: () => certsReport(identity.current, tlsTarget(), { nextRenewalMs: nextRenewalMs(), lastServedCheck }),
      config: () => ({ ...redactedConfig(config), policiesVersion: policies.current.version, denyList: { spiffeIds: [...denyList.current.spiffeIds], serials: [...denyList.current.serials] }, listeners: listeners.map((l) => ({ name: l.config.name, port: l.port, open: l.openConnections })) }),
      onError: (err, path) => log.error({ path, err: describeError(err) }, 'admin provider failed'),
      appProbes: config.admin.appProbes,
    });
  } catch (e) {
    for (const s of stoppables) s.stop();
    throw e;
  }

  // ---- listeners, once identity and policy are in place (no mTLS is served before)
  await firstIdentity;
  await firstPolicies;
  // The config's telemetry.tracing, else the standard OTEL_* variables; the SDK loads only when tracing is on.
  const tracing = resolveTracing(config.telemetry.tracing, rt.env, { serviceName: `tessera-proxy ${identity.current!.id.path}`, spiffeId: identity.current!.id.toString() });
  for (const w of tracing.warnings) log.warn({ detail: w }, 'tracing environment variable ignored');
  const tracer = !tracing.settings ? null : (await import('./telemetry/tracing.js')).createRequestTracer(tracing.settings);
  if (tracing.settings) log.info({ endpoint: tracing.settings.endpoint, sampler: tracing.settings.sampler, serviceName: tracing.settings.resource['service.name'] }, 'tracing on');
  const ticketKeys = new TicketKeys();
  const rotateTickets = setInterval(() => {
    ticketKeys.rotate();
    for (const l of listeners) if (l instanceof InboundListener || l instanceof InboundH2Listener) l.rotateTicketKeys();
  }, config.limits.ticketKeyRotationMs);
  rotateTickets.unref();
  stoppables.push({ stop: () => clearInterval(rotateTickets) });
  const deps: ListenerDeps = {
    identity,
    policies,
    denyList,
    metrics,
    accessLog,
    tracer,
    limits: config.limits,
    ticketKeys,
    clientContexts: new ClientContexts(),
    nowMs,
    requestId: createRequestIds(),
    log,
  };
  const started: { kind: 'inbound' | 'outbound' | 'edge'; name: string; port: number }[] = [];
  try {
    for (const c of config.inbound) {
      const l = c.protocol === 'http2' || c.protocol === 'grpc' ? new InboundH2Listener(c, deps) : new InboundListener(c, deps);
      listeners.push(l);
      started.push({ kind: 'inbound', name: c.name, port: (await l.start()).port });
    }
    for (const c of config.edge) {
      const l = new EdgeListener(c, deps);
      listeners.push(l);
      started.push({ kind: 'edge', name: c.name, port: (await l.start()).port });
    }
    for (const c of config.outbound) {
      const l = c.protocol === 'http2' || c.protocol === 'grpc' ? new OutboundH2Listener(c, deps) : new OutboundListener(c, deps);
      listeners.push(l);
      started.push({ kind: 'outbound', name: c.name, port: (await l.start()).port });
    }
  } catch (e) {
    for (const l of listeners) l.close();
    for (const s of stoppables) s.stop();
    await admin.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new TesseraError('TESSERA_ERR_PROXY_LISTEN_FAILED', `a listener port is already in use: ${err.message}`);
    throw e;
  }
  let workloadApi: WorkloadApiServer | undefined;
  if (config.workloadApi) {
    const { WorkloadApiServer } = await import('./workload-api/workload-api-server.js');
    workloadApi = await WorkloadApiServer.start({
      socketPath: config.workloadApi.socket,
      feed: {
        current: () => {
          const s = identity.current;
          if (!s) return undefined;
          const bundles = new Map(s.bundles.bundles().map((b) => [b.trustDomain.name, b.authorities.map((a) => a.raw)] as const));
          return { spiffeId: s.id.toString(), trustDomain: s.id.trustDomain.name, chainDer: s.chain.map((c) => c.raw), keyPkcs8Der: s.key.privateKey.export({ type: 'pkcs8', format: 'der' }), bundles };
        },
        subscribe: (l) => identity.subscribe(() => l()),
      },
    });
  }
  listenersUp = true;

  // Verify in use: after every swap, a fresh handshake to our own inbound listener must serve the new serial.
  const verifyServed = async (snapshot: IdentitySnapshot) => {
    const target = tlsTarget();
    if (!target?.port) return;
    const served = await probeServedSerial(snapshot, target);
    if (identity.current !== snapshot) return; // superseded meanwhile; the next check covers it
    const match = served === snapshot.serial;
    metrics.servedCheck(match ? 'match' : 'mismatch');
    lastServedCheck = { serial: snapshot.serial, served, match, checkedAt: new Date(nowMs()).toISOString(), afterInstallMs: nowMs() - snapshot.installedAtMs };
    if (match) log.info({ serial: snapshot.serial, afterInstallMs: lastServedCheck.afterInstallMs }, 'new SVID verified in use');
    else log.error({ serial: snapshot.serial, served }, 'the inbound listener does not serve the installed SVID');
  };
  const unsubscribeServed = identity.subscribe((s) => void verifyServed(s));
  stoppables.push({ stop: () => void unsubscribeServed() });
  const recheck = setInterval(() => {
    if (lastServedCheck && !lastServedCheck.match && identity.current) void verifyServed(identity.current);
  }, 5_000);
  recheck.unref();
  stoppables.push({ stop: () => clearInterval(recheck) });
  void verifyServed(identity.current!);

  return {
    admin: admin.address,
    listeners: started,
    readiness,
    async shutdown() {
      if (draining) return;
      draining = true;
      for (const l of listeners) l.drain();
      const deadline = nowMs() + config.limits.drainTimeoutMs;
      while (nowMs() < deadline && listeners.some((l) => l.openConnections > 0)) await new Promise((r) => setTimeout(r, 50));
      for (const l of listeners) l.close();
      for (const s of stoppables) s.stop();
      await workloadApi?.close();
      await tracer?.shutdown();
      await accessLog.close();
      await admin.close();
    },
  };
}
