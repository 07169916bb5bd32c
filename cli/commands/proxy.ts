// `tessera proxy --config F`: runs a sidecar (or edge) proxy until SIGTERM/SIGINT, then drains and exits 0.
import { requiredString } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';

export const proxyCommand: Command = {
  path: ['proxy'],
  summary: 'Run a sidecar or edge proxy',
  usage: '--config F',
  details:
    'Validates the config (errors name file, line and key), loads the identity and policies, then serves.\n' +
    'Prints "tessera proxy: ready" on stdout once every listener serves. Operational logs are JSON on stderr;\n' +
    'access logs go where telemetry.accessLog says (stdout by default). SIGTERM drains: stop accepting, finish\n' +
    'in-flight requests up to limits.drainTimeout, exit 0.',
  flags: {
    config: { type: 'string', value: 'F', description: 'Proxy config file (YAML)', required: true },
  },
  async run(args, io) {
    // Loaded here, not at the top: every `tessera` command would otherwise pay for the proxy's modules.
    const [{ default: pino }, { loadProxyConfig }, { startProxy }] = await Promise.all([import('pino'), import('../../proxy/src/config/proxy-config.js'), import('../../proxy/src/main.js')]);
    const config = loadProxyConfig(requiredString(args, 'config'));
    const log = pino({ level: config.logLevel, base: { component: 'tessera-proxy' } }, pino.destination({ fd: 2, sync: false }));
    const proxy = await Promise.race([startProxy(config, { clock: io.clock, log }), io.stopSignal.then(() => null)]);
    if (!proxy) return EXIT_OK;
    const listeners = proxy.listeners.map((l) => `${l.kind}/${l.name}=${l.port}`).join(' ');
    io.stdout(`tessera proxy: listening admin=${proxy.admin.host}:${proxy.admin.port} ${listeners}\n`);
    io.stdout('tessera proxy: ready\n');
    const signal = await io.stopSignal;
    log.info({ signal }, 'draining');
    await proxy.shutdown();
    log.flush();
    return EXIT_OK;
  },
};
