// `tessera token create`: asks the running control plane (over <data-dir>/admin.sock) for a single-use join
// token bound to one SPIFFE ID; prints the token alone on stdout.
import { type Command, runOnDemand } from '../command.js';

export const tokenCreateCommand: Command = {
  path: ['token', 'create'],
  summary: 'Create a single-use join token for one SPIFFE ID',
  usage: '--data-dir D --spiffe-id ID [--ttl D]',
  details: 'Talks to the running control plane through D/admin.sock. Prints the token alone on stdout; it is shown once and stored only as a hash.',
  flags: {
    'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
    'spiffe-id': { type: 'string', value: 'ID', description: 'The SPIFFE ID the token attests', required: true },
    ttl: { type: 'string', value: 'DURATION', description: 'How long the token stays usable (default 1h, at most 30d)' },
  },
  run: runOnDemand(() => import('../run/token-create.js'), (m) => m.runTokenCreate),
};
