// `tessera proxy --config F`: runs a sidecar (or edge) proxy until SIGTERM/SIGINT, then drains and exits 0.
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../common/clock.js';
import { preciseSystemClock } from '../../common/precise-clock.js';
import { WORKER_ENV } from '../../proxy/src/workers/worker-env.js';
import { missingNodeFlags } from '../../shared-io/node-flags.js';
import { startupError } from '../../shared-io/startup-error.js';
import { requiredString } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { readBuildInfo } from '../read-build-info.js';

const COMPONENT = 'tessera-proxy';
/** This CLI's entry (dist/cli/tessera.js): a `workers: N` primary runs it again as each listener worker. */
const CLI = fileURLToPath(new URL('../tessera.js', import.meta.url));

export const proxyCommand: Command = {
  path: ['proxy'],
  ownsStop: true,
  summary: 'Run a sidecar or edge proxy',
  usage: '--config F',
  details:
    'Validates the config (errors name file, line and key), loads the identity and policies, then serves.\n' +
    'Prints the JSON lines "tessera proxy: listening" (bound ports) and "tessera proxy: ready" on stdout once every\n' +
    'listener serves. Operational logs are JSON on stderr; access logs (JSON) go where telemetry.accessLog says\n' +
    '(stdout by default): stdout holds JSON lines only. SIGTERM drains: stop accepting, finish\n' +
    'in-flight requests up to limits.drainTimeout, exit 0.',
  flags: {
    config: { type: 'string', value: 'F', description: 'Proxy config file (YAML)', required: true },
  },
  async run(args, io) {
    // Loaded here, not at the top: every `tessera` command would otherwise pay for the proxy's modules.
    const [{ createLogger, flushLogger, lifecycleLine, logProcessWarnings }, { loadProxyConfig }, { startProxy }] = await Promise.all([import('../logger.js'), import('../../proxy/src/config/proxy-config.js'), import('../../proxy/src/main.js')]);
    const config = loadProxyConfig(requiredString(args, 'config'));
    const log = createLogger({ level: config.logLevel, component: COMPONENT });
    logProcessWarnings(process, log);
    // Exchanges are timed below a millisecond (a loopback request takes ~0.3 ms); an injected test clock stays as is.
    const exchangeClock = io.clock === systemClock ? preciseSystemClock() : io.clock;
    // A listener worker of a `workers: N` primary (docs/workers.md): it prints nothing on stdout but its access log.
    if (io.env[WORKER_ENV] !== undefined) {
      const code = await (await import('../../proxy/src/workers/worker-process.js')).runWorkerProcess(Number(io.env[WORKER_ENV]), { clock: io.clock, exchangeClock, deadlineClock: systemClock, log, env: io.env, build: readBuildInfo() }, io.stopSignal);
      await flushLogger(log);
      return code;
    }
    const missing = missingNodeFlags(process.execArgv);
    if (missing.length > 0) {
      log.warn({ missing }, 'started without the V8 flags Tessera runs with (the bin, image and `tessera up` pass them): RSS can grow 2-3x under connection churn, see docs/operations.md');
    }
    // A listener worker is `tessera proxy --config F` again, with the same V8 flags (it finds its role in WORKER_ENV).
    const workerCommand = { command: process.execPath, args: [...process.execArgv, CLI, 'proxy', '--config', config.file] };
    const started = startProxy(config, { clock: io.clock, exchangeClock, deadlineClock: systemClock, log, env: io.env, build: readBuildInfo(), workerCommand }).catch((e: unknown) => {
      throw startupError(e, 'TESSERA_ERR_PROXY_START_FAILED');
    });
    const proxy = await Promise.race([started, io.stopSignal.then(() => null)]);
    if (!proxy) return EXIT_OK;
    // JSON like the access log that shares stdout: a collector parsing stdout never meets a plain line.
    const listeners = Object.fromEntries(proxy.listeners.map((l) => [`${l.kind}/${l.name}`, l.port]));
    io.stdout(lifecycleLine(COMPONENT, 'tessera proxy: listening', { admin: `${proxy.admin.host}:${proxy.admin.port}`, listeners }, io.clock.nowMs()));
    io.stdout(lifecycleLine(COMPONENT, 'tessera proxy: ready', {}, io.clock.nowMs()));
    const signal = await io.stopSignal;
    log.info({ signal }, 'draining');
    await proxy.shutdown();
    await flushLogger(log);
    return EXIT_OK;
  },
};
