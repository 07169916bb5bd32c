// `tessera up`: the whole mesh on loopback in one command (embedded demo, or --config mesh.yaml).
import { type Command, runOnDemand } from '../command.js';

export const upCommand: Command = {
  path: ['up'],
  ownsStop: true,
  summary: 'Run a local mesh on loopback: control plane, demo apps and their sidecars',
  usage: '[--config mesh.yaml] [--state-dir DIR] [--quiet]',
  details: 'Prints the SPIFFE IDs, ports and commands to try, then `tessera up: ready`, and writes <state dir>/up.json. Ctrl-C stops everything.',
  flags: {
    config: { type: 'string', value: 'FILE', description: 'A mesh.yaml describing your own workloads and policies' },
    'state-dir': { type: 'string', value: 'DIR', description: 'Where state, logs and the CA live (default ./.tessera)' },
    quiet: { type: 'boolean', description: 'Print only the ready line' },
  },
  run: runOnDemand(() => import('../run/up.js'), (m) => m.runUp),
};
