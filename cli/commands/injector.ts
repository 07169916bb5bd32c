// `tessera injector --config F`: runs the sidecar-injection webhook alone (no CA, no store) until SIGTERM/SIGINT.
// Prints `tessera injector: listening <host:port>`, then exactly `tessera injector: ready` once it serves.
import { type Command, runOnDemand } from '../command.js';

export const injectorCommand: Command = {
  path: ['injector'],
  ownsStop: true,
  summary: 'Run the Kubernetes sidecar-injection webhook alone (no CA: it stays up when issuance is not)',
  usage: '--config FILE',
  details: [
    'Serves POST /inject (AdmissionReview v1), GET /healthz and GET /ready over HTTPS. It reads only its serving',
    'certificate (watched, a Secret\'s ..data swap included; checked every 10 s as a fallback) and the trust bundle file (re-read at every admission; the last good one',
    'is kept): no control plane has to be running. Logs are JSON lines on stderr.',
    'Its config file is watched too: a valid edit applies to the next admission (all keys but listen, certFile and keyFile,',
    'which need a restart and are logged as such); a file that does not validate is logged and the previous settings stay.',
    'SIGTERM or SIGINT: /ready turns 503, open requests finish, exit 0. Config reference: docs/kubernetes.md.',
  ].join('\n'),
  flags: {
    config: { type: 'string', value: 'FILE', description: 'Injector YAML config', required: true },
  },
  run: runOnDemand(() => import('../run/injector.js'), (m) => m.runInjector),
};
