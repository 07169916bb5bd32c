// The composition root of one listener worker (`workers: N`, docs/workers.md): the listeners of the config,
// bound with SO_REUSEPORT on the ports the primary names, fed by the primary's snapshots (identity, policies,
// deny-list, ticket keys, discovery) over IPC. No identity source, policy source, discovery or admin of its own.
// Edge certificates it reads from files itself, falling back at start to the last set its siblings loaded.
import type { Logger } from 'pino';
import { describeError, TesseraError } from '../../../common/errors.js';
import { heapTrimWanted, startProcessHeapTrim } from '../../../shared-io/process-heap-trim.js';
import { realTimers } from '../../../shared-io/timers.js';
import { PolicyHolder } from '../authz/policy-holder.js';
import { parseProxyConfig } from '../config/proxy-config.js';
import type { EdgeCertTexts } from '../edge/edge-certificates.js';
import { IdentityStore } from '../identity/identity-store.js';
import { LocalPlane } from '../listeners/local-plane.js';
import type { ProxyRuntime } from '../proxy-runtime.js';
import { ServiceDirectory } from '../routing/service-directory.js';
import { createProxyRegistry, ProxyMetrics } from '../telemetry/metrics.js';
import { DenyListHolder } from '../tls/deny-list-holder.js';
import type { WorkerChannel } from './worker-channel.js';
import { sharedPortsConfig } from './worker-config.js';
import { applyDirectory, applyPolicies, decodeDenyList, decodeIdentity, type SnapshotPart, type SnapshotParts, type ToWorker } from './worker-messages.js';

export interface RunningWorker {
  /** Stop accepting, let in-flight exchanges finish up to the drain deadline, then close everything. */
  shutdown(): Promise<void>;
}

type Init = Extract<ToWorker, { type: 'init' }>;

function firstInit(channel: WorkerChannel, onLater: (m: ToWorker) => void): Promise<Init> {
  return new Promise((resolve) => {
    let got = false;
    channel.onMessage((m) => {
      if (!got && m.type === 'init') {
        got = true;
        resolve(m);
      } else if (got) onLater(m);
    });
  });
}

export async function startWorker(channel: WorkerChannel, rt: ProxyRuntime): Promise<RunningWorker> {
  const { clock, log } = rt;
  const timers = rt.timers ?? realTimers;
  const nowMs = () => clock.nowMs();
  // Messages after init wait until the listeners exist (a stats request needs them).
  const early: ToWorker[] = [];
  let handle = (m: ToWorker) => void early.push(m);
  const gone = channel.disconnected.then((): never => {
    throw new TesseraError('TESSERA_ERR_PROXY_START_FAILED', 'the primary went away before the worker started');
  });
  const init = await Promise.race([firstInit(channel, (m) => handle(m)), gone]);
  const config = sharedPortsConfig(parseProxyConfig(init.configText, init.configFile), init.ports);

  const registry = createProxyRegistry();
  const metrics = new ProxyMetrics(registry, { build: rt.build });
  const identity = new IdentityStore(clock);
  const policies = new PolicyHolder(config.authorization.defaultAction);
  const denyList = new DenyListHolder();
  const routed = config.outbound.some((c) => c.route.kind !== 'static');
  const directory = routed ? new ServiceDirectory({ onListenerError: (err, service) => log.error({ service, err: describeError(err) }, 'directory listener failed') }) : undefined;
  // Parts this worker refused and still runs an older copy of; each part is taken or refused on its own.
  const refused = new Set<SnapshotPart>();
  const take = (part: SnapshotPart, apply: () => void, logTo: Logger) => {
    try {
      apply();
      if (refused.delete(part)) void channel.send({ type: 'recovered', part });
    } catch (e) {
      // The part in force stays (as in one process when an update is refused); the primary counts the refusal
      // (tessera_worker_snapshot_refusals_total) and its /ready names this worker until a later one is taken.
      refused.add(part);
      logTo.error({ part, err: describeError(e) }, 'snapshot part from the primary refused');
      void channel.send({ type: 'refused', part, code: e instanceof TesseraError ? e.code : 'uncoded' });
    }
  };
  const install = (parts: SnapshotParts, logTo: Logger) => {
    const { identity: id, policies: pol, denyList: deny, directory: dir } = parts;
    if (id) {
      take('identity', () => {
        identity.update(decodeIdentity(id));
        void channel.send({ type: 'installed', identityGeneration: id.generation });
      }, logTo);
    }
    if (pol) take('policies', () => applyPolicies(policies, pol), logTo);
    if (deny) take('denyList', () => denyList.set(decodeDenyList(deny)), logTo);
    if (dir && directory) take('directory', () => applyDirectory(directory, dir), logTo);
  };
  install(init.parts, log);
  if (!identity.current) throw new TesseraError('TESSERA_ERR_PROXY_START_FAILED', 'the primary sent no identity');

  // The workers share the primary's stdout; each edge set loaded goes to the primary, and a set refused on disk at
  // start gives way to the siblings' last good one.
  const plane = new LocalPlane({
    config,
    held: { identity, policies, denyList, metrics },
    registry,
    clock,
    exchangeClock: rt.exchangeClock,
    timers,
    log,
    env: rt.env,
    sharedAccessLog: true,
    edgeCertificates: (listener: string) => {
      const lastGood = init.edgeCertificates[listener];
      return { ...(lastGood ? { lastGood } : {}), onLoaded: (texts: EdgeCertTexts) => void channel.send({ type: 'edge-certificates', listener, texts }) };
    },
  });
  const started = await plane.start(directory);

  handle = (m) => {
    if (m.type === 'update') install(m.parts, log);
    else if (m.type === 'ping') void channel.send({ type: 'pong' });
    else if (m.type === 'stats') {
      void registry.getMetricsAsJSON().then((metricsJson) =>
        channel.send({ type: 'stats', id: m.id, stats: { pid: process.pid, metrics: metricsJson, listeners: plane.listeners(), endpoints: plane.endpoints(), denials: plane.denials.rows() } }),
      );
    }
  };
  for (const m of early.splice(0)) handle(m);
  const heapTrim = heapTrimWanted(rt.env) ? await startProcessHeapTrim({ registry, timers, nowMs, log }) : undefined;
  await channel.send({ type: 'listening', ports: Object.fromEntries(started.map((l) => [`${l.kind}/${l.name}`, l.port])) });

  let draining = false;
  return {
    async shutdown() {
      if (draining) return;
      draining = true;
      heapTrim?.stop();
      await plane.drain();
      await plane.close();
    },
  };
}
