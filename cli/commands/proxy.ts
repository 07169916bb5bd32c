// `tessera proxy --config F`: runs a sidecar (or edge) proxy until SIGTERM/SIGINT, then drains and exits 0.
import { type Command, runOnDemand } from '../command.js';

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
  run: runOnDemand(() => import('../run/proxy.js'), (m) => m.runProxy),
};
