// `tessera control-plane --config F`: runs the control plane until SIGTERM/SIGINT, then drains and exits 0.
// Prints the bound addresses, then exactly `tessera control-plane: ready` once it serves (harnesses wait for it).
import { type Command, runOnDemand } from '../command.js';

export const controlPlaneCommand: Command = {
  path: ['control-plane'],
  ownsStop: true,
  summary: 'Run the control plane (CA, SVID issuance, Config/Watch, admin API)',
  usage: '--config FILE [--drain MS]',
  details: [
    'Stdout: one line with the bound addresses, then `tessera control-plane: ready`. Logs are JSON lines on stderr.',
    'SIGTERM or SIGINT: stop accepting, end Config/Watch streams, finish calls within --drain, exit 0.',
    'Config reference: docs/configuration.md (control-plane config); what it does: docs/control-plane.md.',
  ].join('\n'),
  flags: {
    config: { type: 'string', value: 'FILE', description: 'Control-plane YAML config', required: true },
    drain: { type: 'string', value: 'MS', description: 'Deadline for a graceful stop, in milliseconds, 0 to 2147483647 (default 10000)' },
  },
  run: runOnDemand(() => import('../run/control-plane.js'), (m) => m.runControlPlane),
};
