// `tessera ca status`: the CA's authorities with their states (prepared, active, retired), whose root is offline,
// expiries and how many live SVIDs chain to each, read from the running control plane over <data-dir>/admin.sock.
import { type Command, runOnDemand } from '../command.js';

export const caStatusCommand: Command = {
  path: ['ca', 'status'],
  summary: 'Show the CA authorities and their states',
  usage: '--data-dir D [--json]',
  details: 'States: prepared (in the bundle, not signing) -> active (signing) -> retired (in the bundle until its SVIDs expire) -> removed. ROOT: managed (its key is here) or offline (docs/offline-root.md).',
  flags: {
    'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
    json: { type: 'boolean', description: 'Print the status as JSON' },
  },
  run: runOnDemand(() => import('../run/ca-status.js'), (m) => m.runCaStatus),
};
